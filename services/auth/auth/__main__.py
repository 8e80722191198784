"""python -m auth: the auth service under gunicorn. `build` is its one wiring: this, scripts/run-local and
the tests all call it."""

from common import telemetry
from common.service import serve_http
from common.settings import AuthSettings, load

# With DEV_RELOAD, imported once by the master rather than at each reload: every library auth's worker
# imports (tests/integration/test_dev_reload.py holds the list complete).
WARM = ("flask", "sqlalchemy", "sqlalchemy.dialects.mysql.pymysql", "sqlalchemy.dialects.sqlite", "pymysql", "jwt",
        "argon2", "prometheus_client", "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.instrumentation.flask",
        "opentelemetry.instrumentation.pymongo", "opentelemetry.instrumentation.requests")


def build(settings: AuthSettings, *, store=None, tracer_provider=None):
    """The auth app on the users of MYSQL_* (their schema brought up to date) or on `store`; the first
    admin made. Its requests' spans come from `tracer_provider` (None: the process's global one)."""
    # Imported here, in the worker, so that a reload (DEV_RELOAD) serves the code as it is now.
    from auth import schema
    from auth.app import create_app, ensure_admin
    from auth.database import engine_for
    from auth.users import UserStore

    if store is None:
        engine = engine_for(settings)
        schema.upgrade(engine)
        store = UserStore(engine)
    ensure_admin(store, settings)
    return create_app(settings, store, tracer_provider=tracer_provider)


def main() -> None:
    settings = load(AuthSettings)
    serve_http(lambda: build(settings, tracer_provider=telemetry.install(settings)), port=settings.auth_port,
               workers=settings.http_workers, threads=settings.http_threads, reload=settings.dev_reload,
               log_level=settings.log_level, warm=WARM)


if __name__ == "__main__":
    main()
