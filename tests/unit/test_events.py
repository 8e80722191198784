"""GET /jobs/<job_id>/events over a real HTTP server (werkzeug, as run-local serves the gateway),
read raw: the order and ids of the events, the end of the stream, heartbeats and the resume."""

import io
import threading
import time

import pytest
import requests

from common import storage
from common.jobs import Jobs
from gateway import job_stream
from gateway.app import create_app
from tests.sse import read_events
from tests.unit.gateway_double import ALICE_TOKEN, BOB_TOKEN, FakeAuth, gateway_settings, served

pytestmark = pytest.mark.usefixtures("clean_env")

STEP = 0.25  # how long each state lasts: several polls at the test's POLL_SECONDS


@pytest.fixture
def gateway_url(settings, memory_db, fake_publisher, monkeypatch):
    monkeypatch.setattr(job_stream, "POLL_SECONDS", 0.02)
    with served(create_app(settings, db=memory_db, publisher=fake_publisher, auth=FakeAuth())) as url:
        yield url


@pytest.fixture
def settings(clean_env):
    return gateway_settings(max_upload_mb=64)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def job_id(gateway_url, samples) -> str:
    with samples["faststart.mp4"].open("rb") as video:
        response = requests.post(f"{gateway_url}/upload", files={"file": ("clip.mp4", video)},
                                 headers=bearer(ALICE_TOKEN), timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def stream(gateway_url, job_id, token=ALICE_TOKEN, last_event_id=None):
    headers = bearer(token) | ({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})
    return requests.get(f"{gateway_url}/jobs/{job_id}/events", headers=headers, stream=True, timeout=30)


def convert_in_background(db, job_id, percents=(10, 50, 90), outcome="done", wait_first=STEP):
    """What the converter does to a job, one step every STEP seconds, on a thread."""

    def run():
        jobs = Jobs(db)
        time.sleep(wait_first)
        jobs.start_attempt(job_id)
        for percent in percents:
            time.sleep(STEP)
            jobs.set_progress(job_id, percent)
        time.sleep(STEP)
        if outcome == "done":
            jobs.finish(job_id, storage.bucket(db, storage.MP3S).upload_from_stream("x.mp3", io.BytesIO(b"mp3")))
        else:
            jobs.fail(job_id, outcome)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_stream_sends_each_change_in_order_then_done_and_ends(gateway_url, memory_db, job_id):
    convert_in_background(memory_db, job_id)
    with stream(gateway_url, job_id) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-store"
        received, _ = read_events(response)

    assert [(e.name, e.data["status"], e.data["progress"]) for e in received] == [
        ("progress", "queued", 0), ("progress", "converting", 0), ("progress", "converting", 10),
        ("progress", "converting", 50), ("progress", "converting", 90), ("done", "done", 100)]
    ids = [e.id for e in received]
    assert ids == sorted(set(ids))
    done = received[-1].data
    assert done["mp3_fid"] and done["job_id"] == job_id and done["filename"] == "clip.mp4"


def test_a_failed_job_ends_with_failed_and_its_reason(gateway_url, memory_db, job_id):
    convert_in_background(memory_db, job_id, percents=(30,), outcome="The video has no audio track.")
    with stream(gateway_url, job_id) as response:
        received, _ = read_events(response)
    assert received[-1].name == "failed"
    assert received[-1].data["error"] == "The video has no audio track."
    assert [e.name for e in received[:-1]] == ["progress"] * (len(received) - 1)


def test_last_event_id_resumes_without_repeats(gateway_url, memory_db, job_id):
    convert_in_background(memory_db, job_id, percents=(10, 20, 30, 40, 50, 60, 70, 80, 90))
    with stream(gateway_url, job_id) as response:
        first, _ = read_events(response, limit=3)
    time.sleep(2 * STEP)  # changes happen while the client is away
    with stream(gateway_url, job_id, last_event_id=first[-1].id) as response:
        rest, _ = read_events(response)

    ids = [e.id for e in first + rest]
    assert ids == sorted(set(ids)), "an event was repeated or went backwards"
    assert rest[0].id > first[-1].id
    assert rest[-1].name == "done"
    # Resuming after the final event: nothing more to say, the stream ends at once.
    with stream(gateway_url, job_id, last_event_id=rest[-1].id) as response:
        assert read_events(response) == ([], [])


def test_an_idle_stream_sends_comment_heartbeats(gateway_url, job_id, monkeypatch):
    monkeypatch.setattr(job_stream, "HEARTBEAT_SECONDS", 0.1)
    with stream(gateway_url, job_id) as response:
        lines = []
        for line in response.iter_lines(decode_unicode=True):
            lines.append(line)
            if lines.count(": keep-alive") == 3:
                break
    assert lines[:1] == ["retry: 2000"]
    assert any(line.startswith("id: ") for line in lines)


@pytest.mark.parametrize(("token", "job", "status"), [
    (BOB_TOKEN, None, 404),            # someone else's job
    (ALICE_TOKEN, "0" * 24, 404),      # unknown
    (ALICE_TOKEN, "not-an-id", 404),   # malformed
    ("forged", None, 401),
])
def test_only_the_owner_may_follow_a_job(gateway_url, job_id, token, job, status):
    response = stream(gateway_url, job or job_id, token=token)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"


def test_the_stream_of_a_job_deleted_meanwhile_ends(gateway_url, memory_db, job_id):
    with stream(gateway_url, job_id) as response:
        lines = response.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event:")) == "event: progress"
        Jobs(memory_db).delete(job_id)
        assert all(not line.startswith("event:") for line in lines)  # ends, with nothing more


def test_the_stream_answers_as_the_spec_says(settings, memory_db, fake_publisher, samples):
    """Through the test client that checks every answer against openapi.yaml: a finished job's
    stream, and the errors."""
    from tests.unit.gateway_double import gateway_app

    client = gateway_app(settings, memory_db, fake_publisher, FakeAuth()).test_client()
    upload = client.post("/upload", headers=bearer(ALICE_TOKEN), content_type="multipart/form-data",
                         data={"file": (io.BytesIO(samples["faststart.mp4"].read_bytes()), "clip.mp4")})
    job_id = upload.get_json()["job_id"]
    Jobs(memory_db).fail(job_id, "The video has no audio track.")
    response = client.get(f"/jobs/{job_id}/events", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    assert "event: failed" in response.get_data(as_text=True)
    assert client.get(f"/jobs/{job_id}/events", headers=bearer(BOB_TOKEN)).status_code == 404
    assert client.get(f"/jobs/{job_id}/events").status_code == 401


def test_event_ids_grow_through_a_retry_after_a_crash():
    def job(status, progress, attempts):
        return {"status": status, "progress": progress, "attempts": attempts}

    life = [job("queued", 0, 0), job("converting", 0, 1), job("converting", 70, 1),
            job("converting", 0, 2), job("converting", 100, 2), job("done", 100, 2)]
    ids = [job_stream.event_id(state) for state in life]
    assert ids == sorted(set(ids))
    assert job_stream.event_id(job("failed", 0, 3)) > job_stream.event_id(job("converting", 100, 3))
    assert job_stream.last_event_id("garbage") == -1
