"""The gateway's contract, checked on every answer: a Flask test client whose responses are validated
against openapi.yaml by openapi-core (status, headers and body), whatever the test itself asserts."""

from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from gateway.api.reference import spec

OPENAPI = OpenAPI.from_dict(spec())


class AnsweredRequest(WerkzeugOpenAPIRequest):
    """The request a response answers, as far as finding its operation goes: its body was read already."""

    @property
    def body(self) -> bytes | None:
        return None


def check(response) -> None:
    """Raise unless the response is one the spec allows for its request. A request the spec has no
    operation for may only be answered 404 (no such route) or 405 (no such method)."""
    request = AnsweredRequest(response.request)
    try:
        OPENAPI.validate_response(request, WerkzeugOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        assert response.status_code in (404, 405), f"{request.method} {request.path}: no operation in the spec"


class ContractClient(FlaskClient):
    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check(response)
        return response
