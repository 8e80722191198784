"""The auth HTTP API: POST /login (Basic) -> JWT, POST /validate (Bearer) -> claims."""

import logging
import time

from flask import Flask, Response, jsonify, request
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from auth import emails, tokens
from auth.passwords import hash_password, verify_password
from auth.users import SETTLE_SECONDS, DuplicateUser, UserStore
from common import metrics, telemetry
from common.http import bearer_token, error_response, install_json_errors
from common.settings import AuthSettings, ConfigurationError

log = logging.getLogger(__name__)

# How long a login waits for checks in flight that hold the account's limit, before answering 429.
SETTLE_WAIT_SECONDS = 3


def ensure_admin(store: UserStore, settings: AuthSettings) -> None:
    """Create the first admin from ADMIN_EMAIL / ADMIN_PASSWORD; a second start changes nothing."""
    password = settings.admin_password.get_secret_value()
    if not settings.admin_email or not password:
        return
    try:
        email = emails.normalise(settings.admin_email)
    except emails.InvalidEmail as error:
        raise ConfigurationError(f"Invalid configuration:\n  ADMIN_EMAIL: {error}") from None
    if store.get(email) is None:
        try:
            store.add(email, hash_password(password), is_admin=True)
            log.info("admin user created", extra={"email": email})
        except DuplicateUser:
            pass  # another replica made it a moment ago


def create_app(settings: AuthSettings, store: UserStore, tracer_provider: TracerProvider | None = None) -> Flask:
    app = Flask(__name__)
    install_json_errors(app)
    secret = settings.jwt_secret.get_secret_value()

    @app.errorhandler(SQLAlchemyError)
    def database_down(error):
        log.error("MySQL unavailable", extra={"error": repr(error)})
        return error_response(503, "database_unavailable", "The user database is unavailable; try again soon.")

    def begin_attempt(email: str) -> int:
        """UserStore.begin_attempt, waiting a moment when the limit is reached only by checks still
        in flight: they settle within a second, and a success among them lets this attempt in."""
        deadline = time.monotonic() + SETTLE_WAIT_SECONDS
        while True:
            wait = store.begin_attempt(email, settings.login_max_failures)
            if not wait or wait > SETTLE_SECONDS or time.monotonic() >= deadline:
                return wait
            time.sleep(0.2)

    @app.post("/login")
    def login():
        """A password is checked only after its attempt is counted (UserStore.begin_attempt): when
        the count cannot be written, the login fails unchecked (401; 503 only when the database
        cannot be reached), so no guess goes uncounted."""
        credentials = request.authorization
        if credentials is None or credentials.type != "basic" or not credentials.username:
            return error_response(401, "missing_credentials", "Send an e-mail and password with HTTP Basic auth.")
        try:
            email = emails.normalise(credentials.username)
        except emails.InvalidEmail as error:
            return error_response(401, "invalid_credentials", f"Wrong e-mail or password. {error}")
        try:
            wait = begin_attempt(email)
        except (DataError, IntegrityError) as error:
            # The database answered and refused to record the attempt: a failed login, not an
            # outage (a 503 here once let guesses go uncounted); the password is never checked.
            log.error("login attempt could not be recorded", extra={"error": repr(error)})
            return error_response(401, "invalid_credentials", "Wrong e-mail or password.")
        if wait:
            response = error_response(429, "too_many_attempts",
                                      f"Too many failed logins for this account; try again in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        user = store.get(email)
        if not verify_password(user.password_hash if user else None, credentials.password or ""):
            store.record_failure(email, settings.login_max_failures, settings.login_lockout_seconds)
            return error_response(401, "invalid_credentials", "Wrong e-mail or password.")
        store.clear_failures(email)
        return Response(tokens.issue(user, secret, settings.jwt_ttl_seconds), mimetype="text/plain")

    @app.post("/validate")
    def validate():
        """A token is valid while its signature, claims and expiry are, and its user still exists
        with the id and token version it names (a deletion or a password change revokes it)."""
        token = bearer_token()
        claims = tokens.decode(token, secret) if token else None
        user = store.get(claims["sub"]) if claims else None
        if user is None or (user.id, user.token_version) != (claims["uid"], claims["ver"]):
            return error_response(401, "invalid_token", "Log in again: the token is missing, invalid or expired.")
        return jsonify(claims)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        try:
            store.ping()
        except SQLAlchemyError as error:  # the why is for the operator's log, not for whoever asks
            log.warning("dependency not ready", extra={"dependency": "mysql", "error": repr(error)})
            return jsonify(ready=False, checks={"mysql": "down"}), 503
        return jsonify(ready=True, checks={"mysql": "ok"})

    metrics.instrument_app(app, "auth")
    telemetry.instrument_app(app, tracer_provider)
    return app
