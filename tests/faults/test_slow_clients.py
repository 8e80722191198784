"""Slow clients against the gateway served as the image serves it (gunicorn, `python -m gateway`):
request heads trickled a line at a time, /login announcing 10 MB and trickling it, an upload that
stalls and one that is slow but steady. /healthz keeps answering in under a second throughout;
each slow client is cut off within the server's bounds (common/http_worker.py); the steady upload
goes through."""

import base64
import contextlib
import socket
import threading
import time

import pytest
import requests

from common.http_worker import HEADER_SECONDS, IDLE_SECONDS
from runlocal.throwaway import running_stack
from tests.faults.conftest import gunicorn_gateway
from tests.servers import ADMIN

HEADER_TRICKLERS = 12
LOGIN_TRICKLERS = 20
LINE_EVERY = 5.0
SLACK = 4.0


@pytest.fixture
def gateway(fault_env, tmp_path):
    with running_stack(fault_env, converters=0) as stack, \
            gunicorn_gateway(fault_env, stack.auth_url, tmp_path / "gateway.log") as (url, _process):
        yield url


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def closed_by_server(sock: socket.socket, deadline: float) -> tuple[bytes, float | None]:
    """Everything the server sent, and when (monotonic) it closed the connection, or None if it
    had not by `deadline`."""
    received = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, time.monotonic()
        if not chunk:
            return received, time.monotonic()
        received += chunk
    return received, None


def status_code(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


class Prober(threading.Thread):
    """GET /healthz on a fresh connection every 0.2 s, recording each answer's time (inf: none)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.times, self.stop = f"{url}/healthz", [], threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            started = time.monotonic()
            try:
                ok = requests.get(self.url, timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            self.times.append(time.monotonic() - started if ok else float("inf"))


def trickle_head(address, results, index):
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
        opened = time.monotonic()
        with contextlib.suppress(OSError):
            for line in range(1, 100):
                _, closed = closed_by_server(sock, time.monotonic() + LINE_EVERY)
                if closed:
                    results[index] = closed - opened
                    return
                sock.sendall(f"X-Slow-{line}: still here\r\n".encode())
        results[index] = time.monotonic() - opened


def trickle_login(address, results, index):
    credentials = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    with socket.create_connection(address) as sock:
        opened = time.monotonic()
        sock.sendall(f"POST /login HTTP/1.1\r\nHost: gateway\r\nAuthorization: Basic {credentials}\r\n"
                     f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode())
        answer, closed = b"", None
        with contextlib.suppress(OSError):
            while closed is None and time.monotonic() - opened < HEADER_SECONDS + IDLE_SECONDS:
                sock.sendall(b"x" * 1024)
                more, closed = closed_by_server(sock, time.monotonic() + 1)
                answer += more
        results[index] = (status_code(answer), (closed or time.monotonic()) - opened)


def stalled_upload(address, token, video: bytes, results):
    # A real video's start: the gateway sniffs it as it arrives (a non-video is refused at once, 415),
    # so the stall happens while the upload is being stored.
    body_start = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
                  + video[:65536])
    with socket.create_connection(address) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {5 * 1024 * 1024}\r\n\r\n"
                     .encode() + body_start)
        stalled = time.monotonic()
        answer, closed = closed_by_server(sock, stalled + IDLE_SECONDS + 2 * SLACK)
        results["stalled"] = (status_code(answer), (closed or float("inf")) - stalled)


def steady_upload(url, token, video: bytes, results):
    """The video in 16 pieces over HEADER_SECONDS + 5 s: slow, but never idle for long."""
    pieces = 16
    pause = (HEADER_SECONDS + 5) / pieces

    def body():
        step = len(video) // pieces + 1
        for offset in range(0, len(video), step):
            yield video[offset:offset + step]
            time.sleep(pause)

    boundary = "steady"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"steady.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()

    def multipart():
        yield head
        yield from body()
        yield f"\r\n--{boundary}--\r\n".encode()

    started = time.monotonic()
    response = requests.post(f"{url}/upload", data=multipart(), timeout=120,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": f"multipart/form-data; boundary={boundary}"})
    results["steady"] = (response.status_code, time.monotonic() - started)


def test_slow_clients_do_not_freeze_the_gateway(gateway, samples):
    address = host_port(gateway)
    token = requests.post(f"{gateway}/login", auth=ADMIN, timeout=10).text
    prober = Prober(gateway)
    prober.start()
    heads, logins, uploads = [None] * HEADER_TRICKLERS, [None] * LOGIN_TRICKLERS, {}
    clients = [threading.Thread(target=trickle_head, args=(address, heads, i)) for i in range(HEADER_TRICKLERS)]
    clients += [threading.Thread(target=trickle_login, args=(address, logins, i)) for i in range(LOGIN_TRICKLERS)]
    clients += [threading.Thread(target=stalled_upload,
                                 args=(address, token, samples["faststart.mp4"].read_bytes(), uploads)),
                threading.Thread(target=steady_upload,
                                 args=(gateway, token, samples["faststart.mp4"].read_bytes(), uploads))]
    for client in clients:
        client.start()
    for client in clients:
        client.join(IDLE_SECONDS + 60)
    prober.stop.set()
    prober.join()

    print(f"\n/healthz: {len(prober.times)} answers, slowest {max(prober.times) * 1000:.0f} ms, median "
          f"{sorted(prober.times)[len(prober.times) // 2] * 1000:.0f} ms, with slow clients connected")
    assert len(prober.times) > 100
    assert max(prober.times) < 1.0, f"/healthz took {max(prober.times):.2f} s while slow clients were connected"
    # A request head must arrive whole within HEADER_SECONDS.
    assert all(seconds < HEADER_SECONDS + SLACK for seconds in heads), heads
    # /login refuses the announced body at once, unread, and the connection ends soon after.
    assert {status for status, _ in logins} == {413}
    assert all(seconds < HEADER_SECONDS + SLACK for _, seconds in logins), logins
    # A body that stops moving ends within IDLE_SECONDS; a slow one that keeps moving goes through.
    status, seconds = uploads["stalled"]
    assert status in (408, None), status
    assert IDLE_SECONDS - 1 < seconds < IDLE_SECONDS + SLACK, seconds
    status, seconds = uploads["steady"]
    assert status == 202
    assert seconds > HEADER_SECONDS
