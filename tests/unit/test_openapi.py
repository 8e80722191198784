"""The spec is the one source of truth: valid OpenAPI 3.1, exactly the app's routes, served as JSON, with
a reference page that needs nothing but the gateway."""

import re
from html.parser import HTMLParser

import pytest
from flask import Flask, jsonify
from openapi_core.validation.response.exceptions import ResponseValidationError
from openapi_spec_validator import validate

from gateway.api import reference
from gateway.api.reference import spec
from tests.unit.contract import check
from tests.unit.gateway_double import FakeAuth, gateway_app, gateway_settings

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def app(clean_env, memory_db, fake_publisher):
    return gateway_app(gateway_settings(), memory_db, fake_publisher, FakeAuth())


@pytest.fixture
def client(app):
    return app.test_client()

# Methods Flask answers by itself for every route.
IMPLICIT = {"HEAD", "OPTIONS"}


def routes(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route the app serves."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule.rule)
        found |= {(method, path) for method in rule.methods - IMPLICIT}
    return found


def operations() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every operation of the spec."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(method.upper(), path) for path, item in spec()["paths"].items() for method in item if method in methods}


def test_the_spec_is_valid_openapi_3_1():
    assert spec()["openapi"].startswith("3.1.")
    validate(spec())


def test_every_route_has_a_spec_entry_and_every_entry_a_route(app):
    """Adding a route means adding its entry to services/gateway/gateway/openapi.yaml, in the same change."""
    served, described = routes(app), operations()
    assert not served - described, f"routes without an entry in openapi.yaml: {sorted(served - described)}"
    assert not described - served, f"entries in openapi.yaml without a route: {sorted(described - served)}"


def test_every_operation_says_who_may_call_it_and_names_its_errors():
    for (method, path) in operations():
        operation = spec()["paths"][path][method.lower()]
        security = operation.get("security", spec()["security"])
        assert operation.get("operationId"), (method, path)
        responses = operation["responses"]
        if security:
            assert "401" in responses, f"{method} {path} needs a token but documents no 401"
            assert "503" in responses, f"{method} {path} asks auth but documents no 503"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                response = resolve(response)
                if "content" in response:
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith(("/Error", "/Readiness"))


def resolve(item: dict) -> dict:
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = spec()["components"][kind][name]
    return item


def test_links_lead_from_upload_to_the_job_to_its_mp3():
    paths = spec()["paths"]
    upload_links = paths["/upload"]["post"]["responses"]["202"]["links"]
    job_links = paths["/jobs/{job_id}"]["get"]["responses"]["200"]["links"]
    assert upload_links["GetJob"] == {**upload_links["GetJob"], "operationId": "getJob",
                                      "parameters": {"job_id": "$response.body#/job_id"}}
    assert job_links["DownloadMp3"]["operationId"] == "download"
    assert job_links["DownloadMp3"]["parameters"] == {"fid": "$response.body#/mp3_fid"}
    assert paths["/jobs"]["get"]["responses"]["200"]["links"]["NextPage"]["parameters"] == {
        "cursor": "$response.body#/next_cursor"}


def test_openapi_json_serves_the_spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == spec()
    assert list(response.get_json()["paths"])[:2] == ["/login", "/upload"]  # as written, not sorted


def test_the_contract_check_rejects_an_answer_the_spec_does_not_allow():
    """The check on every test client answer is not vacuous: a job with a field too many fails it."""
    app = Flask(__name__)

    @app.get("/jobs/<job_id>")
    def job(job_id):
        return jsonify(job_id=job_id, status="done", extra="not in the spec")

    with pytest.raises(ResponseValidationError):
        check(app.test_client().get("/jobs/0123456789abcdef01234567"))


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def test_docs_is_a_page_that_loads_everything_from_the_gateway(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    # The browser itself refuses anything from elsewhere.
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = Page()
    page.feed(response.get_data(as_text=True))
    assert page.urls, "the page loads no scripts or styles"
    for url in page.urls:
        assert not re.match(r"^([a-z]+:)?//", url), f"{url} is not on the gateway"
        asset = client.get(f"/{url}")
        assert asset.status_code == 200, url
        assert asset.get_data(), url
    inline = "".join(page.scripts)
    assert 'url: "openapi.json"' in inline
    assert "validatorUrl: null" in inline  # Swagger UI would otherwise send the spec to an online validator


def test_the_reference_page_is_swagger_ui_from_its_package(client):
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert bundle.get_data() == (reference.SWAGGER_UI / "swagger-ui-bundle.js").read_bytes()
    assert (reference.SWAGGER_UI / "VERSION").read_text().startswith("v5.")  # Swagger UI 5 reads OpenAPI 3.1


@pytest.mark.parametrize("asset", ["nope.js", "VERSION", "..%2Fflask_swagger_ui.py", "oauth2-redirect.html"])
def test_docs_serves_only_its_own_assets(client, asset):
    response = client.get(f"/docs/{asset}")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
