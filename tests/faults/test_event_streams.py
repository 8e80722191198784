"""Event streams against the gateway served as the image serves it (gunicorn, `python -m gateway`),
with one worker process, the hardest case: 50 streams held open while logins and uploads answer in
normal time, and streams whose clients leave free their connections within seconds."""

import statistics
import time

import psutil
import pytest
import requests

from runlocal.throwaway import running_stack
from tests.faults.conftest import gunicorn_gateway, wait_until
from tests.servers import ADMIN

STREAMS = 50


@pytest.fixture
def gateway(fault_env, tmp_path):
    with running_stack(fault_env, converters=0) as stack, \
            gunicorn_gateway(fault_env, stack.auth_url, tmp_path / "gateway.log", workers=1) as (url, process):
        yield url, psutil.Process(process.pid).children()[0]


def timed(call) -> float:
    started = time.monotonic()
    response = call()
    assert response.status_code in (200, 202), response.text
    return time.monotonic() - started


def login_and_upload_times(url, token, video: bytes, rounds: int = 5) -> list[float]:
    def login():
        return requests.post(f"{url}/login", auth=ADMIN, timeout=30)

    def upload():
        return requests.post(f"{url}/upload", files={"file": ("clip.mp4", video)},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)

    return [timed(call) for _ in range(rounds) for call in (login, upload)]


def client_connections(worker: psutil.Process, port: int) -> int:
    """Connections the worker still holds to clients (a stream whose client left, unnoticed, sits in
    CLOSE_WAIT)."""
    return sum(1 for c in worker.net_connections("tcp") if c.laddr.port == port and c.status != psutil.CONN_LISTEN)


def test_fifty_open_streams_leave_logins_and_uploads_in_normal_time_and_free_on_leaving(gateway, samples):
    url, worker = gateway
    port = int(url.rsplit(":", 1)[1])
    token = requests.post(f"{url}/login", auth=ADMIN, timeout=10).text
    video = samples["faststart.mp4"].read_bytes()
    headers = {"Authorization": f"Bearer {token}"}
    job_id = requests.post(f"{url}/upload", files={"file": ("clip.mp4", video)}, headers=headers,
                           timeout=30).json()["job_id"]  # no converter runs: the job stays queued
    unloaded = login_and_upload_times(url, token, video)

    streams = []
    for _ in range(STREAMS):
        response = requests.get(f"{url}/jobs/{job_id}/events", headers=headers, stream=True, timeout=30)
        assert response.status_code == 200
        lines = response.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event:")) == "event: progress"
        streams.append((response, lines))
    cpu_before, started = worker.cpu_times(), time.monotonic()
    loaded = login_and_upload_times(url, token, video)
    time.sleep(max(0.0, 5 - (time.monotonic() - started)))
    cpu_after, elapsed = worker.cpu_times(), time.monotonic() - started
    assert client_connections(worker, port) >= STREAMS

    print(f"\nlogin+upload median: {statistics.median(unloaded) * 1000:.0f} ms alone, "
          f"{statistics.median(loaded) * 1000:.0f} ms with {STREAMS} open streams; worker CPU with "
          f"them: {(cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / elapsed:.1%}")
    assert statistics.median(loaded) < 3 * statistics.median(unloaded) + 0.2
    assert max(loaded) < 3 * max(unloaded) + 0.5

    left = time.monotonic()
    for response, _lines in streams:
        response.close()  # unread: the connection is closed, without a word, as a closed tab does
    wait_until(lambda: client_connections(worker, port) == 0, 5, "the worker to let go of the streams")
    print(f"all {STREAMS} streams freed {time.monotonic() - left:.1f} s after their clients left")
    # The worker still serves.
    assert timed(lambda: requests.get(f"{url}/jobs/{job_id}", headers=headers, timeout=10)) < 1



def test_a_stopping_gateway_ends_its_streams_at_once(gateway, samples):
    """SIGTERM: the streams end within a poll, so the shutdown does not wait its graceful timeout
    (20 s) for them; their clients resume elsewhere with Last-Event-ID."""
    url, worker = gateway
    token = requests.post(f"{url}/login", auth=ADMIN, timeout=10).text
    headers = {"Authorization": f"Bearer {token}"}
    job_id = requests.post(f"{url}/upload", files={"file": ("clip.mp4", samples["faststart.mp4"].read_bytes())},
                           headers=headers, timeout=30).json()["job_id"]
    with requests.get(f"{url}/jobs/{job_id}/events", headers=headers, stream=True, timeout=30) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event:")) == "event: progress"
        master = worker.parent()
        stopping = time.monotonic()
        master.terminate()
        assert not any(line.startswith("event:") for line in lines)  # the stream ended
        master.wait(15)
        assert time.monotonic() - stopping < 5, "the shutdown waited for the stream"
