"""python -m gateway: the gateway under gunicorn's gevent worker (common/http_worker.py says why).
`build` is its one wiring: this, scripts/run-local and the tests all call it.

Only settings are read here, in gunicorn's master. The app and everything it talks through (pymongo,
pika, requests) are imported by `build`, which each worker runs after gevent has patched the
standard library, so that their sockets and locks yield to other connections instead of blocking.
With DEV_RELOAD the master patches itself first and imports those libraries (WARM) for its workers, so
that a worker started for a change imports only the gateway's own code (common.service).
"""

from common import telemetry
from common.service import serve_http
from common.settings import GatewaySettings, load


def build(settings: GatewaySettings, *, db=None, publisher=None, auth=None, tracer_provider=None):
    """The gateway app on the MongoDB, RabbitMQ and auth of `settings`, or on those given. Its requests'
    spans come from `tracer_provider` (None: the process's global one)."""
    # Imported here, in the worker, so that a reload (DEV_RELOAD) serves the code as it is now.
    from common import storage
    from common.broker import Publisher
    from common.jobs import Jobs
    from gateway.app import create_app
    from gateway.auth_client import AuthClient

    if db is None:
        db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    Jobs(db).ensure_indexes()
    storage.ensure_indexes(db)
    if publisher is None:
        # It declares only the queue it publishes to: its broker user may touch no other.
        publisher = Publisher(settings.rabbitmq_url, (settings.video_queue,), prioritised=(settings.video_queue,))
    if auth is None:
        auth = AuthClient(str(settings.auth_svc_address), settings.auth_timeout_seconds,
                          cache_seconds=settings.token_cache_seconds)
    return create_app(settings, db=db, publisher=publisher, auth=auth, tracer_provider=tracer_provider)


# With DEV_RELOAD, imported once by the master, after gevent has patched it, rather than at each reload:
# every library the gateway's worker imports (tests/integration/test_dev_reload.py holds the list complete).
WARM = ("flask", "jinja2", "yaml", "werkzeug", "pymongo", "gridfs", "bson", "pika", "requests", "limits",
        "cachetools", "filetype", "flask_swagger_ui", "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.instrumentation.flask",
        "opentelemetry.instrumentation.pymongo", "opentelemetry.instrumentation.requests")


def main() -> None:
    settings = load(GatewaySettings)
    serve_http(lambda: build(settings, tracer_provider=telemetry.install(settings)), port=settings.gateway_port,
               workers=settings.http_workers, threads=settings.http_threads, reload=settings.dev_reload,
               log_level=settings.log_level, streaming=True, warm=WARM)


if __name__ == "__main__":
    main()
