"""GET /healthz (the process serves) and GET /readyz (each dependency's state)."""

import functools

from flask import Blueprint, jsonify, request

from common import storage
from common.broker import Publisher
from gateway.context import gateway

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz():
    gw = gateway()
    checks = {
        "auth": gw.auth.ping,
        "mongodb": functools.partial(storage.ping, gw.db),
        "rabbitmq": gw.publisher.ping,
    }
    if request.args.get("scope") != "gateway":
        checks["converter"] = functools.partial(_has_consumer, gw.publisher, gw.settings.video_queue)
        checks["notification"] = functools.partial(_has_consumer, gw.publisher, gw.settings.mp3_queue)
    states = {name: _state(check) for name, check in checks.items()}
    ready = all(state == "ok" for state in states.values())
    return jsonify(ready=ready, checks=states), 200 if ready else 503


def _has_consumer(publisher: Publisher, queue: str) -> None:
    if publisher.consumer_count(queue) == 0:
        raise LookupError(f"no consumer on queue {queue!r}")


def _state(check) -> str:
    try:
        check()
    except Exception as error:
        return f"error: {error}"
    return "ok"
