"""POST /login: HTTP Basic credentials in, a JWT out; auth decides, the gateway relays its answer.
Each client address may try only so many (gateway/login_limit.py)."""

from flask import Blueprint, Response, request

from common.http import error_response
from gateway.context import gateway

blueprint = Blueprint("login", __name__)

# The credentials travel in a header. A body is refused before it is read, so that nobody can hold
# a connection open by announcing megabytes and trickling them.
MAX_BODY_BYTES = 1024


@blueprint.post("/login")
def login():
    if (request.content_length or 0) > MAX_BODY_BYTES or "chunked" in request.headers.get("Transfer-Encoding", ""):
        return error_response(413, "too_large", "POST /login takes no body: send the credentials with HTTP Basic.")
    limit = gateway().login_limit
    wait = limit.attempt(limit.client(request.remote_addr, request.headers.get("X-Forwarded-For", "")))
    if wait:
        response = error_response(429, "too_many_logins",
                                  f"Too many logins from your address; try again in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    answer = gateway().auth.login(request.headers.get("Authorization", ""))
    if answer.status_code == 200:
        return Response(answer.text, mimetype="text/plain")
    response = Response(answer.content, status=answer.status_code, mimetype="application/json")
    if "Retry-After" in answer.headers:
        response.headers["Retry-After"] = answer.headers["Retry-After"]
    return response
