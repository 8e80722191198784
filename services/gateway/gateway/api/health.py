"""GET /healthz (the process serves) and GET /readyz (each dependency's state).

/readyz is public (the Ingress routes it), so it says only `ok` or `down` per dependency. Why one is
down (the driver's error, with internal addresses and queue names) is logged, for the operator.
"""

import functools
import logging

from flask import Blueprint, jsonify, request

from common import storage
from common.broker import Publisher
from gateway.context import gateway

log = logging.getLogger(__name__)

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
    states = {name: _state(name, check) for name, check in checks.items()}
    ready = all(state == "ok" for state in states.values())
    return jsonify(ready=ready, checks=states), 200 if ready else 503


def _has_consumer(publisher: Publisher, queue: str) -> None:
    if publisher.consumer_count(queue) == 0:
        raise LookupError(f"no consumer on queue {queue!r}")


def _state(name: str, check) -> str:
    try:
        check()
    except Exception as error:
        log.warning("dependency not ready", extra={"dependency": name, "error": f"{error.__class__.__name__}: {error}"})
        return "down"
    return "ok"
