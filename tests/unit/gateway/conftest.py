"""The gateway alone: its app over mongomock GridFS, a fake broker and a fake auth."""

import pytest

from common.settings import GatewaySettings
from tests.unit.gateway_double import FakeAuth, gateway_app, gateway_settings


@pytest.fixture(autouse=True)
def _clean(clean_env):
    """No variable of this machine's environment reaches the settings under test."""


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def settings(clean_env) -> GatewaySettings:
    return gateway_settings()


@pytest.fixture
def app(settings, memory_db, fake_publisher, fake_auth):
    return gateway_app(settings, memory_db, fake_publisher, fake_auth)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def video(samples) -> bytes:
    return samples["faststart.mp4"].read_bytes()
