"""POST /upload: one gateway process receives at most MAX_UPLOADS_IN_FLIGHT uploads at once, whoever
sends them (each holds up to about 20 MiB while it is stored: 40 at once took one worker to 729 MiB,
over the gateway's 512 MiB). The next is answered 429 before its body is read, and a place is free
again as soon as an upload ends, however it ends."""

import socket
import time

import pytest
import requests

from tests.unit.gateway.calls import bearer, multipart_body
from tests.unit.gateway_double import ALICE_TOKEN, BOB_TOKEN, gateway_settings, served


@pytest.fixture
def settings(clean_env):
    return gateway_settings(max_uploads_in_flight=2, max_upload_mb=8)


@pytest.fixture
def port(app):
    with served(app) as url:
        yield int(url.rsplit(":", 1)[1])


def upload_that_waits(port: int, video: bytes, token: str) -> tuple[socket.socket, bytes]:
    """An upload whose body has begun (its file's first bytes) and then waits, holding its place."""
    body = multipart_body(video)
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                       + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                       + body[:len(body) // 2])
    return connection, body[len(body) // 2:]


def finish(waiting: tuple[socket.socket, bytes]) -> bytes:
    """Send the rest of the body; the answer's status line."""
    connection, rest = waiting
    connection.sendall(rest)
    answer = connection.recv(65536)
    connection.close()
    return answer.split(b"\r\n", 1)[0]


def test_uploads_beyond_max_uploads_in_flight_wait_for_a_place(port, client, memory_db, video):
    waiting = [upload_that_waits(port, video, ALICE_TOKEN), upload_that_waits(port, video, BOB_TOKEN)]
    time.sleep(0.5)  # both are being received

    refused = requests.post(f"http://127.0.0.1:{port}/upload", headers=bearer(ALICE_TOKEN) | {
        "Content-Type": "multipart/form-data; boundary=B"}, data=multipart_body(video), timeout=10)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_uploads"
    assert int(refused.headers["Retry-After"]) > 0
    assert memory_db["jobs"].count_documents({}) == 0

    assert finish(waiting[0]) == b"HTTP/1.1 202 ACCEPTED"
    again = client.post("/upload", headers=bearer(ALICE_TOKEN), content_type="multipart/form-data; boundary=B",
                        data=multipart_body(video))  # checked against openapi.yaml
    assert again.status_code == 202, again.get_data(as_text=True)
    assert finish(waiting[1]) == b"HTTP/1.1 202 ACCEPTED"
    assert memory_db["jobs"].count_documents({}) == 3
