"""GET / and its files, through the test client that checks every answer against openapi.yaml (the
page itself is tested in a browser in tests/clients)."""

import pytest

from gateway.api.page import ASSETS, CONTENT_SECURITY_POLICY, STATIC
from tests.unit.gateway_double import FakeAuth, gateway_app, gateway_settings

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def client(clean_env, memory_db, fake_publisher):
    return gateway_app(gateway_settings(), memory_db, fake_publisher, FakeAuth()).test_client()


def test_the_page_is_served_with_a_strict_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == (STATIC / "index.html").read_bytes()


@pytest.mark.parametrize("asset", sorted(ASSETS))
def test_its_files_are_served_as_they_are(client, asset):
    response = client.get(f"/static/{asset}")
    assert response.status_code == 200
    assert response.get_data() == (STATIC / asset).read_bytes()


@pytest.mark.parametrize("asset", ["index.html", "nope.js", "..%2Fapi%2Fpage.py"])
def test_nothing_else_is(client, asset):
    response = client.get(f"/static/{asset}")
    assert response.status_code == 404
    assert response.mimetype == "application/json"


def test_every_file_the_page_names_is_served(client):
    html = client.get("/").get_data(as_text=True)
    for asset in ASSETS:
        assert f'"/static/{asset}"' in html
