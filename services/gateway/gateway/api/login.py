"""POST /login: HTTP Basic credentials in, a JWT out; auth decides, the gateway relays its answer."""

from flask import Blueprint, Response, request

from gateway.context import gateway

blueprint = Blueprint("login", __name__)


@blueprint.post("/login")
def login():
    answer = gateway().auth.login(request.headers.get("Authorization", ""))
    if answer.status_code == 200:
        return Response(answer.text, mimetype="text/plain")
    response = Response(answer.content, status=answer.status_code, mimetype="application/json")
    if "Retry-After" in answer.headers:
        response.headers["Retry-After"] = answer.headers["Retry-After"]
    return response
