"""RabbitMQ stopped while jobs are queued and in flight: uploads get a quick 503, readiness says so,
and once the broker is back every job ends done with exactly one MP3."""

import contextlib
import shutil
import subprocess
import time

import pytest

from common import storage
from runlocal import mongo
from tests.faults.conftest import InProcessConverter, wait_until


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def broker_stopped():
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app")  # always, even when the test fails
        rabbitmqctl("await_startup")


@pytest.fixture
def controllable_broker(fault_env):
    if shutil.which("rabbitmqctl") is None or "127.0.0.1" not in fault_env["RABBITMQ_URL"]:
        pytest.skip("needs rabbitmqctl for the local RabbitMQ the tests use")


def test_jobs_survive_a_broker_outage(controllable_broker, fault_env, fault_stack, slow_video, samples):
    client = fault_stack.client
    with InProcessConverter(fault_env):
        in_flight = client.upload(slow_video).json()["job_id"]
        queued = [client.upload(samples[name]).json()["job_id"] for name in ("faststart.mp4", "video.mkv")]
        wait_until(lambda: client.job(in_flight).json()["progress"] > 0, 60, "the slow job to be converting")

        with broker_stopped():
            started = time.monotonic()
            refused = client.upload(samples["video.mov"])
            answered_in = time.monotonic() - started
            readiness = client.http.get(f"{fault_stack.gateway_url}/readyz", timeout=30)
            jobs_during = client.jobs().json()["jobs"]

        assert refused.status_code == 503
        assert refused.json()["error"] == "queue_unavailable"
        assert answered_in < 5
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["rabbitmq"] == "down"
        assert len(jobs_during) == 3, "the refused upload left a job behind"

        finals = [client.wait_final(job_id, timeout=240) for job_id in [in_flight, *queued]]

    assert [job["status"] for job in finals] == ["done"] * 3
    db = mongo.connect(fault_env["MONGODB_URI"], fault_env["MONGODB_DB"])
    for job in finals:
        mp3s = list(db[f"{storage.MP3S}.files"].find({"metadata.job_id": job["job_id"]}))
        assert [m["_id"] for m in mp3s] == [storage.object_id(job["mp3_fid"])]
    # Converted videos go (KEEP_VIDEOS=false), and the refused upload left none behind.
    assert db[f"{storage.VIDEOS}.files"].count_documents({}) == 0
    ready = f"{fault_stack.gateway_url}/readyz?scope=gateway"
    wait_until(lambda: client.http.get(ready, timeout=30).status_code == 200,
               60, "the gateway to be ready again")
