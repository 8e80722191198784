"""python -m gateway: the gateway under gunicorn's gevent worker (common/http_worker.py says why).

Only settings are read here, in gunicorn's master. The app and everything it talks through (pymongo,
pika, requests) are imported by `build`, which each worker runs after gevent has patched the
standard library, so that their sockets and locks yield to other connections instead of blocking.
"""

from common.service import serve_http
from common.settings import GatewaySettings, load


def build(settings: GatewaySettings):
    # Imported here, in the worker, so that a reload (DEV_RELOAD) serves the code as it is now.
    from common import storage
    from common.broker import Publisher
    from common.jobs import Jobs
    from gateway.app import create_app
    from gateway.auth_client import AuthClient

    db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    Jobs(db).ensure_indexes()
    storage.ensure_indexes(db)
    # It declares only the queue it publishes to: its broker user may touch no other.
    publisher = Publisher(settings.rabbitmq_url, (settings.video_queue,))
    auth = AuthClient(str(settings.auth_svc_address), settings.auth_timeout_seconds,
                      cache_seconds=settings.token_cache_seconds)
    return create_app(settings, db=db, publisher=publisher, auth=auth)


# With DEV_RELOAD, imported once rather than at each reload: libraries that open no connection, so that
# gevent's patching, which comes later in the worker, still reaches every socket the app opens.
WARM = ("flask", "jinja2", "yaml")


def main() -> None:
    settings = load(GatewaySettings)
    serve_http(lambda: build(settings), port=settings.gateway_port, workers=settings.http_workers,
               threads=settings.http_threads, reload=settings.dev_reload, log_level=settings.log_level,
               streaming=True, warm=WARM)


if __name__ == "__main__":
    main()
