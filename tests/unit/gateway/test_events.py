"""GET /jobs/<job_id>/events over a real HTTP server, for what outlasts one request: a stream ends
soon after its token stops being accepted, and one user cannot hold more than
MAX_EVENT_STREAMS_PER_USER streams at once."""

import time

import pytest
import requests

from gateway import job_stream
from tests.unit.gateway.calls import bearer, upload
from tests.unit.gateway_double import ALICE_TOKEN, BOB_TOKEN, FakeAuth, gateway_settings, served


class RevocableAuth(FakeAuth):
    """FakeAuth whose tokens can be revoked, as a password change or a deleted account revokes them."""

    def __init__(self):
        super().__init__()
        self.revoked: set[str] = set()

    def validate(self, token: str) -> dict | None:
        return None if token in self.revoked else super().validate(token)


@pytest.fixture
def fake_auth() -> RevocableAuth:
    return RevocableAuth()


@pytest.fixture
def settings(clean_env):
    return gateway_settings(max_event_streams_per_user=2)


@pytest.fixture
def gateway_url(app, monkeypatch):
    """The app behind a real threaded HTTP server, whose streams poll quickly and send heartbeats often."""
    monkeypatch.setattr(job_stream, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(job_stream, "HEARTBEAT_SECONDS", 0.1)
    with served(app) as url:
        yield url


@pytest.fixture
def job_id(client, video) -> str:
    """Alice's job, queued for as long as the test lasts."""
    response = upload(client, video)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["job_id"]


def open_stream(url: str, job_id: str, token: str = ALICE_TOKEN) -> requests.Response:
    return requests.get(f"{url}/jobs/{job_id}/events", headers=bearer(token), stream=True, timeout=10)


def lines_of(response: requests.Response):
    """The stream's lines, read through one iterator (a second one would see nothing)."""
    if not hasattr(response, "lines"):
        response.lines = response.iter_lines(decode_unicode=True)
    return response.lines


def first_event(response: requests.Response) -> str:
    return next(line for line in lines_of(response) if line.startswith("event:"))


def seconds_until_it_ends(response: requests.Response, limit: float) -> float:
    """How long the stream goes on (heartbeats keep coming while it does); `limit` when it does not end."""
    started = time.monotonic()
    for _line in lines_of(response):
        if time.monotonic() - started > limit:
            return limit
    return time.monotonic() - started


def test_a_stream_ends_once_its_token_is_revoked(gateway_url, fake_auth, client, job_id):
    with open_stream(gateway_url, job_id) as stream:
        assert first_event(stream) == "event: progress"
        fake_auth.revoked.add(ALICE_TOKEN)
        assert client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).status_code == 401
        assert seconds_until_it_ends(stream, limit=10) < 3  # checked every second


def test_a_stream_ends_when_its_token_can_no_longer_be_checked(gateway_url, fake_auth, job_id):
    with open_stream(gateway_url, job_id) as stream:
        assert first_event(stream) == "event: progress"
        fake_auth.down = True  # the client reconnects and is told 503 until auth is back
        assert seconds_until_it_ends(stream, limit=10) < 3  # checked every second


def test_a_user_has_at_most_max_event_streams_per_user_open(gateway_url, client, job_id, video):
    bobs_job = upload(client, video, token=BOB_TOKEN).get_json()["job_id"]
    first, second = open_stream(gateway_url, job_id), open_stream(gateway_url, job_id)
    assert first_event(first) == first_event(second) == "event: progress"

    with open_stream(gateway_url, job_id) as third:
        assert third.status_code == 429
    refused = client.get(f"/jobs/{job_id}/events", headers=bearer(ALICE_TOKEN))  # checked against openapi.yaml
    assert refused.get_json()["error"] == "too_many_streams"
    assert int(refused.headers["Retry-After"]) > 0
    with open_stream(gateway_url, bobs_job, token=BOB_TOKEN) as bobs:  # others are not held back by her
        assert first_event(bobs) == "event: progress"

    first.close()  # a place is free again once the gateway sees the client gone
    deadline = time.monotonic() + 5
    while (third := open_stream(gateway_url, job_id)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)
    with third:
        assert third.status_code == 200
        assert first_event(third) == "event: progress"
    second.close()
