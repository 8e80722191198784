"""Start auth, gateway, converter and notification as threads of this process.

Each service as its own `build` makes it for its image, served by werkzeug's threaded server instead
of gunicorn. Ports may be 0 (the tests): the gateway is pointed at wherever auth really listens.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import requests
from werkzeug.serving import make_server

from auth.__main__ import build as build_auth
from common import metrics
from common.consumer import consumer
from common.service import ConsumerService
from common.settings import AuthSettings, ConverterSettings, GatewaySettings, NotificationSettings, load
from converter.__main__ import build as build_converter
from gateway.__main__ import build as build_gateway
from notification.__main__ import build as build_notification
from runlocal import mongo, traces
from runlocal.database import prepare

log = logging.getLogger(__name__)


SHUTDOWN_POLL_SECONDS = 0.05


@dataclass
class Stack:
    gateway_url: str
    auth_url: str
    metrics_url: str
    _stop: threading.Event
    _servers: list
    _threads: list = field(default_factory=list)

    def wait_ready(self, timeout: float = 60, require_consumers: bool = True) -> None:
        """Until the gateway's /readyz answers 200 (with scope=gateway: not waiting for consumers)."""
        url = f"{self.gateway_url}/readyz" + ("" if require_consumers else "?scope=gateway")
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = requests.get(url, timeout=5)
                if last.status_code == 200:
                    return
            except requests.RequestException as error:
                last = error
            time.sleep(0.2)
        raise TimeoutError(f"the stack did not become ready in {timeout} s: {getattr(last, 'text', last)}")

    def stop(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=60)


def _serve(app, port: int, name: str, threads: list):
    server = make_server("127.0.0.1", port, app, threaded=True)
    # shutdown() waits for serve_forever's next look at its flag: every SHUTDOWN_POLL_SECONDS rather than
    # socketserver's 0.5 s, which each restart of --reload waited once per server.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, name=name,
                              daemon=True)
    thread.start()
    threads.append(thread)
    return server


def start(*, auth_port: int | None = None, gateway_port: int | None = None, metrics_port: int | None = None,
          converters: int = 1) -> Stack:
    """Start everything from the environment (already holding .env's values); return once listening.

    Each service is made by its own `build`, as in its image, with run-local's MongoDB (runlocal.mongo)
    and a TracerProvider of its own (runlocal.traces). The consumers' metrics are served once, on
    METRICS_PORT, for all of them: they share this process."""
    traces.install()
    auth_settings = load(AuthSettings)
    prepare(auth_settings)
    threads: list = []
    auth_server = _serve(build_auth(auth_settings, tracer_provider=traces.provider_for(auth_settings)),
                         auth_settings.auth_port if auth_port is None else auth_port, "auth", threads)
    auth_url = f"http://127.0.0.1:{auth_server.server_port}"

    gateway_settings = load(GatewaySettings, auth_svc_address=auth_url)
    db = mongo.connect(gateway_settings.mongodb_uri, gateway_settings.mongodb_db)
    gateway_app = build_gateway(gateway_settings, db=db, tracer_provider=traces.provider_for(gateway_settings))
    gateway_server = _serve(gateway_app, gateway_settings.gateway_port if gateway_port is None else gateway_port,
                            "gateway", threads)

    stop = threading.Event()
    converter_settings = load(ConverterSettings)
    notification_settings = load(NotificationSettings)
    metrics_port = metrics.serve(converter_settings.metrics_port if metrics_port is None else metrics_port,
                                 "127.0.0.1")
    converter = build_converter(converter_settings, db=db)
    notification = build_notification(notification_settings, db=db)
    workers = [*(_consumer(converter_settings, converter) for _ in range(converters)),
               _consumer(notification_settings, notification)]
    for index, worker in enumerate(workers):
        thread = threading.Thread(target=worker.run, args=(stop,), name=f"{worker.queue}-{index}", daemon=True)
        thread.start()
        threads.append(thread)
    # The background tasks once per process, as each converter container has them once.
    for task in (*converter.background_tasks, *notification.background_tasks):
        thread = threading.Thread(target=task.run, args=(stop,), name=type(task).__name__, daemon=True)
        thread.start()
        threads.append(thread)
    return Stack(gateway_url=f"http://127.0.0.1:{gateway_server.server_port}", auth_url=auth_url,
                 metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
                 _stop=stop, _servers=[auth_server, gateway_server], _threads=threads)


def _consumer(settings, service: ConsumerService):
    return consumer(settings, service.queue, service.handler, service.publishes_to,
                    tracer_provider=traces.provider_for(settings))


def apply_dotenv(path) -> None:
    """Variables from .env, where the environment does not set them already."""
    from dotenv import dotenv_values

    for name, value in dotenv_values(path).items():
        os.environ.setdefault(name, value or "")
