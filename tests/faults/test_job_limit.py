"""One user cannot fill the queue: against the gateway served as the image serves it (gunicorn), the
upload after MAX_ACTIVE_JOBS_PER_USER jobs in flight is answered 429 with Retry-After, before its
body is read, and the client sees that answer (not a broken connection) even while it is still
sending a large file. Deleting a job frees its place."""

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from runlocal.throwaway import running_stack
from tests.faults.conftest import gunicorn_gateway
from tests.servers import ADMIN, Client, stack_environment

LIMIT = 2


@pytest.fixture
def gateway(servers, tmp_path_factory, tmp_path):
    env = stack_environment(servers, tmp_path_factory, "lim", MAX_ACTIVE_JOBS_PER_USER=str(LIMIT))
    # No converter: the jobs stay queued. One worker: its in-memory MongoDB is the only one.
    with running_stack(env, converters=0) as stack, \
            gunicorn_gateway(env, stack.auth_url, tmp_path / "gateway.log", workers=1) as (url, _process):
        client = Client(url)
        assert client.login(*ADMIN).status_code == 200
        yield client


def test_the_upload_past_the_limit_is_429_before_its_body_and_a_deleted_job_frees_a_place(gateway, samples,
                                                                                             tmp_path):
    queued = [gateway.upload(samples["faststart.mp4"]) for _ in range(LIMIT)]
    assert [r.status_code for r in queued] == [202] * LIMIT
    large = tmp_path / "large.mp4"
    large.write_bytes(samples["faststart.mp4"].read_bytes() + bytes(40 * 1024 * 1024))

    refused = gateway.upload(large)

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_jobs"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(gateway.jobs().json()["jobs"]) == LIMIT  # nothing stored for it

    assert gateway.delete(queued[0].json()["job_id"]).status_code == 204
    assert gateway.upload(large).status_code == 202
    assert gateway.upload(samples["faststart.mp4"]).status_code == 429


PARALLEL = 12
UPLOAD_BYTES = 16 * 1024 * 1024
FIRST_BYTES = 1024 * 1024


def start_upload(url: str, token: str, video: bytes) -> tuple[socket.socket, bytes]:
    """An upload of UPLOAD_BYTES sent by hand: its head and the first FIRST_BYTES of its body only; the
    socket, and the rest of the body."""
    boundary = b"parallel-upload"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n")
    tail = b"\r\n--" + boundary + b"--\r\n"
    body = head + video + bytes(UPLOAD_BYTES - len(video)) + tail
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=30)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + token.encode()
                 + b"\r\nContent-Type: multipart/form-data; boundary=" + boundary
                 + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    sock.sendall(body[:FIRST_BYTES])
    return sock, body[FIRST_BYTES:]


def answer_within(sock: socket.socket, seconds: float) -> int | None:
    """The status the gateway answered with, or None when it answers nothing within `seconds`."""
    sock.settimeout(seconds)
    try:
        status_line = sock.recv(64)
    except TimeoutError:
        return None
    return int(status_line.split()[1])


def test_parallel_uploads_past_the_limit_are_429_before_their_bodies(gateway, samples):
    """The limit bounds uploads in progress too, not only the jobs stored: of one user's 12 uploads at
    once, at most MAX_ACTIVE_JOBS_PER_USER are read; the rest are refused having sent 1 MiB of 16."""
    for job in gateway.jobs().json()["jobs"]:  # the stack's storage outlives a test: start with every place free
        assert gateway.delete(job["job_id"]).status_code == 204
    video = samples["faststart.mp4"].read_bytes()
    with ThreadPoolExecutor(PARALLEL) as pool:
        uploads = list(pool.map(lambda _: start_upload(gateway.base, gateway.token, video), range(PARALLEL)))
        early = list(pool.map(lambda upload: answer_within(upload[0], 10), uploads))
    try:
        reading = [upload for upload, status in zip(uploads, early, strict=True) if status is None]
        # Never more than LIMIT. Fewer, even none, when all twelve keep counting each other (docs/jobs.md).
        assert len(reading) <= LIMIT, early
        assert early.count(429) == PARALLEL - len(reading)
        for sock, rest in reading:
            sock.settimeout(60)
            sock.sendall(rest)
        assert [answer_within(sock, 60) for sock, _rest in reading] == [202] * len(reading)
    finally:
        for sock, _rest in uploads:
            sock.close()
    assert len(gateway.jobs().json()["jobs"]) == len(reading)
