"""A gateway worker that stops (SIGTERM, or a reload under DEV_RELOAD, which goes through the same
common.patches.StreamingWorker.stopping) closes the connections kept alive between requests at once,
rather than hold its exit for HEADER_SECONDS: a browser tab left open would otherwise delay every reload
of compose watch by that much. A request in progress is finished first: the upload that was streaming
when the worker was told to stop is stored and answered, and only then does the worker exit."""

import socket
import threading
import time
import urllib.parse

import pytest
import requests

from common.http_worker import HEADER_SECONDS
from runlocal.throwaway import running_stack
from tests.faults.conftest import gunicorn_gateway
from tests.servers import ADMIN

pytestmark = pytest.mark.timeout(300)


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"content-length"])
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_a_stopping_worker_closes_an_idle_kept_alive_connection_at_once(fault_env, tmp_path):
    with running_stack(fault_env, converters=0) as stack, \
            gunicorn_gateway(fault_env, stack.auth_url, tmp_path / "gateway.log", workers=1) as (url, process):
        address = urllib.parse.urlparse(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as kept_alive:
            kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert read_response(kept_alive).startswith(b"HTTP/1.1 200")
            process.terminate()  # gunicorn's master passes SIGTERM on to its worker
            kept_alive.settimeout(HEADER_SECONDS - 3)
            try:
                closed = kept_alive.recv(1) == b""
            except TimeoutError:
                closed = False
            assert closed, f"the idle connection was still open {HEADER_SECONDS - 3} s after SIGTERM"
        assert process.wait(timeout=30) == 0


def test_a_stopping_worker_finishes_the_upload_in_progress_then_exits(fault_env, tmp_path, samples):
    video = samples["faststart.mp4"].read_bytes()
    boundary = "stop"
    told_to_stop = threading.Event()

    def multipart():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode()
        half = len(video) // 2
        yield video[:half]
        assert told_to_stop.wait(30)
        time.sleep(2)  # the worker is stopping now, with this upload half read
        yield video[half:]
        yield f"\r\n--{boundary}--\r\n".encode()

    with running_stack(fault_env, converters=0) as stack, \
            gunicorn_gateway(fault_env, stack.auth_url, tmp_path / "gateway.log", workers=1) as (url, process):
        token = requests.post(f"{url}/login", auth=ADMIN, timeout=10).text
        answers = {}
        upload = threading.Thread(target=lambda: answers.update(upload=requests.post(
            f"{url}/upload", data=multipart(), timeout=60,
            headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})))
        upload.start()
        time.sleep(1)
        process.terminate()
        told_to_stop.set()
        upload.join(60)
        assert answers["upload"].status_code == 202, answers["upload"].text
        assert answers["upload"].json()["job_id"]
        assert process.wait(timeout=30) == 0
