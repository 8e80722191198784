"""GET /healthz and GET /readyz: what each dependency's state makes of them."""

import logging

import pytest
from pymongo.errors import ServerSelectionTimeoutError

import common.removal
import common.storage
from gateway.auth_client import AuthUnavailable
from tests.unit.gateway_double import (
    MP3_QUEUE,
    VIDEO_QUEUE,
)

# ---------------------------------------------------------------- health


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.fixture
def consumers(fake_publisher):
    fake_publisher.consumers = {VIDEO_QUEUE: 1, MP3_QUEUE: 2}
    return fake_publisher


def test_readyz_is_200_when_every_dependency_is_ok(client, consumers):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True
    assert body["checks"] == dict.fromkeys(["auth", "mongodb", "rabbitmq", "converter", "notification"], "ok")


def _auth_down(fake_auth, fake_publisher, monkeypatch):
    fake_auth.down = True


def _broker_down(fake_auth, fake_publisher, monkeypatch):
    fake_publisher.fail = True


def _no_converter(fake_auth, fake_publisher, monkeypatch):
    fake_publisher.consumers[VIDEO_QUEUE] = 0


def _no_notification(fake_auth, fake_publisher, monkeypatch):
    del fake_publisher.consumers[MP3_QUEUE]


def _mongodb_down(fake_auth, fake_publisher, monkeypatch):
    def down(_db):
        raise ServerSelectionTimeoutError("MongoDB is away (test)")

    monkeypatch.setattr(common.storage, "ping", down)


@pytest.mark.parametrize(("failure", "failing"), [
    (_auth_down, "auth"), (_broker_down, "rabbitmq"), (_no_converter, "converter"),
    (_no_notification, "notification"), (_mongodb_down, "mongodb"),
])
def test_readyz_is_503_naming_the_failing_dependency(client, consumers, fake_auth, monkeypatch, failure, failing):
    failure(fake_auth, consumers, monkeypatch)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ready"] is False
    assert [name for name, state in body["checks"].items() if state != "ok"] == [failing]
    assert body["checks"][failing] == "down"


def test_readyz_tells_strangers_only_ok_or_down_and_the_log_tells_the_operator_why(
        client, fake_auth, fake_publisher, monkeypatch, caplog):
    """What a driver says when its server is away names internal addresses; the queues have internal names."""
    def auth_down():
        raise AuthUnavailable("HTTPConnectionPool(host='auth', port=5000): Max retries exceeded")

    def broker_down():
        raise ConnectionError("AMQPConnectionError: rabbitmq:5672 [Errno 111] Connection refused")

    def mongodb_down(_db):
        raise ServerSelectionTimeoutError("mongodb:27017: [Errno 111] Connection refused")

    monkeypatch.setattr(fake_auth, "ping", auth_down)
    monkeypatch.setattr(fake_publisher, "ping", broker_down)
    monkeypatch.setattr(common.storage, "ping", mongodb_down)

    with caplog.at_level(logging.WARNING, logger="gateway.api.health"):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "checks": dict.fromkeys(
        ["auth", "mongodb", "rabbitmq", "converter", "notification"], "down")}
    text = response.get_data(as_text=True)
    for internal in ("auth", "5000", "mongodb:27017", "rabbitmq:5672", VIDEO_QUEUE, MP3_QUEUE, "Errno", "refused"):
        assert internal not in text.replace('"auth"', ""), internal
    why = {r.dependency: r.error for r in caplog.records if r.getMessage() == "dependency not ready"}
    assert "port=5000" in why["auth"]
    assert "mongodb:27017" in why["mongodb"]
    assert "rabbitmq:5672" in why["rabbitmq"]
    assert VIDEO_QUEUE in why["converter"] and MP3_QUEUE in why["notification"]


def test_readyz_scope_gateway_ignores_the_consumers(client, fake_publisher):
    response = client.get("/readyz?scope=gateway")
    assert response.status_code == 200
    assert response.get_json()["checks"] == dict.fromkeys(["auth", "mongodb", "rabbitmq"], "ok")
    assert client.get("/readyz").status_code == 503  # the full check does see the missing consumers


def test_readyz_scope_gateway_still_checks_the_gateways_own_dependencies(client, fake_auth):
    fake_auth.down = True
    assert client.get("/readyz?scope=gateway").status_code == 503
