"""What every call shares: the token it needs, the token cache, JSON errors for the rest."""

import json
import time

import pytest
import requests
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError

from common.jobs import Jobs
from gateway.auth_client import AuthClient
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    UNKNOWN_ID,
    bearer,
)
from tests.unit.gateway_double import (
    ALICE_TOKEN,
)

PROTECTED = [("post", "/upload"), ("get", "/jobs"), ("get", f"/jobs/{UNKNOWN_ID}"), ("delete", f"/jobs/{UNKNOWN_ID}"),
             ("get", f"/download?fid={UNKNOWN_ID}")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", [{}, bearer("token-mallory")], ids=["no-token", "bad-token"])
def test_every_user_call_needs_a_valid_token(client, method, path, headers):
    assert_json_error(getattr(client, method)(path, headers=headers), 401)


def test_storage_down_is_503_json(client, monkeypatch):
    def down(*_args, **_kwargs):
        raise ServerSelectionTimeoutError("MongoDB is away (test)")

    monkeypatch.setattr(Jobs, "list_owned", down)
    assert_json_error(client.get("/jobs", headers=bearer(ALICE_TOKEN)), 503)


# ---------------------------------------------------------------- errors


def test_unknown_route_is_404_json(client):
    assert_json_error(client.get("/no/such/route"), 404)


@pytest.mark.parametrize(("method", "path"), [("get", "/upload"), ("get", "/login"), ("delete", "/jobs"),
                                              ("post", "/download")])
def test_wrong_method_is_405_json(client, method, path):
    response = getattr(client, method)(path, headers=bearer(ALICE_TOKEN))
    assert_json_error(response, 405)
    assert response.headers.get("Allow")


class CountingAuth:
    """auth's /validate as an HTTP server would answer it, counting the calls."""

    def __init__(self, exp_in: float = 3600):
        self.calls = 0
        self.exp_in = exp_in

    def post(self, url, headers, timeout):
        self.calls += 1
        response = requests.Response()
        token = headers["Authorization"].removeprefix("Bearer ")
        if token == "good":
            response.status_code = 200
            now = time.time()
            response._content = json.dumps({"sub": "alice@example.com", "admin": False, "iat": int(now),
                                            "exp": now + self.exp_in}).encode()
        else:
            response.status_code = 401
            response._content = b'{"error": "invalid_token", "message": "no"}'
        return response


def test_an_accepted_token_is_not_validated_again_for_each_request():
    client = AuthClient("http://auth.test", timeout=1)
    client._http = CountingAuth()
    assert [client.validate("good")["sub"] for _ in range(5)] == ["alice@example.com"] * 5
    assert client._http.calls == 1


def test_an_accepted_token_is_asked_about_again_once_the_cache_time_is_over():
    # What makes a deletion or a password change take effect here: auth is asked again at the latest
    # after TOKEN_CACHE_SECONDS, and refuses the token then.
    now = [1000.0]
    client = AuthClient("http://auth.test", timeout=1, cache_seconds=60, clock=lambda: now[0])
    client._http = CountingAuth()
    client.validate("good")
    now[0] += 59.9
    client.validate("good")
    assert client._http.calls == 1
    now[0] += 0.2
    client.validate("good")
    assert client._http.calls == 2


def test_a_token_cache_of_0_seconds_asks_auth_every_time():
    client = AuthClient("http://auth.test", timeout=1, cache_seconds=0)
    client._http = CountingAuth()
    for _ in range(3):
        assert client.validate("good")["sub"] == "alice@example.com"
    assert client._http.calls == 3


def test_a_refused_or_expired_token_is_asked_about_every_time():
    client = AuthClient("http://auth.test", timeout=1)
    client._http = CountingAuth(exp_in=-1)
    assert client.validate("bad") is None
    assert client.validate("bad") is None
    client.validate("good")
    client.validate("good")
    assert client._http.calls == 4


def test_jobs_recorded_under_the_address_before_jobs_had_account_ids_go_to_the_account_that_had_it(
        client, memory_db):
    from datetime import UTC, datetime, timedelta

    from tests.unit.gateway_double import ACCOUNTS_MADE_AT, ALICE, ALICE_ID

    jobs = Jobs(memory_db)
    made = datetime.fromtimestamp(ACCOUNTS_MADE_AT, UTC)
    alices = jobs.create(ALICE, "mine.mp4", ObjectId())
    predecessors = jobs.create(ALICE, "theirs.mp4", ObjectId())  # from before Alice's account was made
    memory_db["jobs"].update_one({"_id": alices["_id"]}, {"$set": {"created_at": made + timedelta(days=1)}})
    memory_db["jobs"].update_one({"_id": predecessors["_id"]}, {"$set": {"created_at": made - timedelta(seconds=1)}})

    listed = client.get("/jobs", headers=bearer(ALICE_TOKEN)).get_json()["jobs"]

    assert [job["filename"] for job in listed] == ["mine.mp4"]
    assert (jobs.get(alices["_id"])["owner"], jobs.get(alices["_id"])["email"]) == (ALICE_ID, ALICE)
    assert client.get(f"/jobs/{predecessors['_id']}", headers=bearer(ALICE_TOKEN)).status_code == 404
