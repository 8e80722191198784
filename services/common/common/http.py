"""JSON errors for the Flask services: {"error": "<code>", "message": "<what to do>"}."""

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException


def error_response(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    """retry_after: seconds, sent as Retry-After (with a 429 or 503)."""
    response = jsonify(error=code, message=message)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install_json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        response = error_response(error.code or 500, code, error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response


def bearer_token() -> str | None:
    """The token of this request's `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
