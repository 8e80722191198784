"""POST /login, and the allowance of logins per client address."""

import time

import pytest

from gateway.login_limit import LoginLimit
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    MIB,
)
from tests.unit.gateway_double import (
    auth_answer,
    gateway_app,
    gateway_settings,
)

# ---------------------------------------------------------------- POST /login


def test_login_forwards_the_credentials_and_answers_the_token_as_text(client, fake_auth):
    response = client.post("/login", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data() == b"header.payload.signature"
    assert fake_auth.logins == ["Basic YWxpY2U6cHc="]


def test_login_refused_by_auth_is_401_json(client, fake_auth):
    fake_auth.login_answer = auth_answer(401, b'{"error":"invalid_credentials","message":"Wrong e-mail or password."}',
                                         "application/json")
    body = assert_json_error(client.post("/login", headers={"Authorization": "Basic eDp5"}), 401)
    assert body["error"] == "invalid_credentials"


def test_login_throttled_by_auth_is_429_with_its_retry_after(client, fake_auth):
    fake_auth.login_answer = auth_answer(429, b'{"error":"too_many_attempts","message":"Wait."}',
                                         "application/json", **{"Retry-After": "42"})
    response = client.post("/login", headers={"Authorization": "Basic eDp5"})
    assert_json_error(response, 429)
    assert response.headers["Retry-After"] == "42"


def test_login_while_auth_is_down_is_503_json(client, fake_auth):
    fake_auth.down = True
    assert_json_error(client.post("/login", headers={"Authorization": "Basic eDp5"}), 503)


# ---------------------------------------------------------------- logins per client address


def limited_client(memory_db, fake_publisher, fake_auth, **overrides):
    settings = gateway_settings(login_attempts_per_client="3/minute", **overrides)
    return gateway_app(settings, memory_db, fake_publisher, fake_auth).test_client()


def login_from(client, remote_addr="203.0.113.7", **headers):
    return client.post("/login", headers={"Authorization": "Basic eDp5", **headers},
                       environ_base={"REMOTE_ADDR": remote_addr})


def test_a_client_over_its_login_allowance_is_429_with_retry_after_and_auth_is_not_asked(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    assert [login_from(client).status_code for _ in range(3)] == [200] * 3
    response = login_from(client)
    assert assert_json_error(response, 429)["error"] == "too_many_logins"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert len(fake_auth.logins) == 3
    assert login_from(client, "198.51.100.9").status_code == 200  # another address has its own allowance


def test_the_login_allowance_comes_back_after_the_window(clean_env, memory_db, fake_publisher, fake_auth, monkeypatch):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    for _ in range(3):
        login_from(client)
    assert login_from(client).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr("limits.storage.memory.time.time", lambda: later)
    assert login_from(client).status_code == 200


def test_forwarded_for_is_ignored_unless_the_connection_is_a_trusted_proxy(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    for n in range(3):
        assert login_from(client, **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code == 200
    assert login_from(client, **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429  # one client, whatever it claims


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth, trusted_proxies="10.0.0.0/8")
    proxy = "10.1.2.3"
    for _ in range(3):
        assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 200
    assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.2"}).status_code == 200
    # What the client itself wrote to the left of the address the proxy saw changes nothing.
    assert login_from(client, proxy, **{"X-Forwarded-For": "192.0.2.50, 198.51.100.1"}).status_code == 429


@pytest.mark.parametrize(("remote", "forwarded", "client"), [
    ("203.0.113.7", "", "203.0.113.7"),
    ("203.0.113.7", "10.0.0.1", "203.0.113.7"),                # not a proxy: its header is its own claim
    ("10.0.0.5", "", "10.0.0.5"),                              # a trusted proxy that names nobody
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),     # the spoofed hop is left of the real one
    ("10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),    # two trusted proxies in a row
    ("10.0.0.5", "not-an-address", "10.0.0.5"),
    ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
])
def test_the_client_address(remote, forwarded, client):
    assert LoginLimit("5/minute", "10.0.0.0/8").client(remote, forwarded) == client


# ---------------------------------------------------------------- bodies /login refuses unread


@pytest.mark.parametrize("headers", [{"Content-Length": str(10 * MIB)}, {"Transfer-Encoding": "chunked"}])
def test_login_with_a_body_is_413_before_auth_is_asked(client, fake_auth, headers):
    response = client.post("/login", headers={"Authorization": "Basic YTpi", **headers}, data=b"x" * 2048)
    assert assert_json_error(response, 413)["error"] == "too_large"
    assert fake_auth.logins == []
