"""The auth HTTP API: POST /login (Basic) -> JWT, POST /validate (Bearer) -> claims."""

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from auth import tokens
from auth.passwords import hash_password, verify_password
from auth.users import DuplicateUser, UserStore
from common import metrics, telemetry
from common.http import bearer_token, error_response, install_json_errors
from common.settings import AuthSettings

log = logging.getLogger(__name__)


def ensure_admin(store: UserStore, settings: AuthSettings) -> None:
    """Create the first admin from ADMIN_EMAIL / ADMIN_PASSWORD; a second start changes nothing."""
    password = settings.admin_password.get_secret_value()
    if not settings.admin_email or not password:
        return
    if store.get(settings.admin_email) is None:
        try:
            store.add(settings.admin_email, hash_password(password), is_admin=True)
            log.info("admin user created", extra={"email": settings.admin_email})
        except DuplicateUser:
            pass  # another replica made it a moment ago


def create_app(settings: AuthSettings, store: UserStore) -> Flask:
    app = Flask(__name__)
    install_json_errors(app)
    secret = settings.jwt_secret.get_secret_value()

    @app.errorhandler(SQLAlchemyError)
    def database_down(error):
        log.error("MySQL unavailable", extra={"error": repr(error)})
        return error_response(503, "database_unavailable", "The user database is unavailable; try again soon.")

    @app.post("/login")
    def login():
        credentials = request.authorization
        if credentials is None or credentials.type != "basic" or not credentials.username:
            return error_response(401, "missing_credentials", "Send an e-mail and password with HTTP Basic auth.")
        email, password = credentials.username, credentials.password or ""
        wait = store.locked_for(email)
        if wait:
            response = error_response(429, "too_many_attempts",
                                      f"Too many failed logins for this account; try again in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        user = store.get(email)
        if not verify_password(user.password_hash if user else None, password):
            store.record_failure(email, settings.login_max_failures, settings.login_lockout_seconds)
            return error_response(401, "invalid_credentials", "Wrong e-mail or password.")
        store.clear_failures(email)
        token = tokens.issue(user.email, user.is_admin, secret, settings.jwt_ttl_seconds)
        return Response(token, mimetype="text/plain")

    @app.post("/validate")
    def validate():
        token = bearer_token()
        claims = tokens.decode(token, secret) if token else None
        if claims is None:
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
    telemetry.instrument_app(app, settings)
    return app
