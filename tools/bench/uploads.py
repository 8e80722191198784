"""Uploads at once: the peak memory of a gateway process receiving many uploads in parallel.

The gateway is `python -m gateway` (gunicorn with its gevent worker) with HTTP_WORKERS=1; auth runs in
this process (runlocal.stack, no converter). MongoDB is the mongo stand-in's server (tools/standins) in
a process of its own, so that the stored bytes are not in the gateway's memory, as with a MongoDB
server. The figure is the worker's peak resident set (VmHWM in /proc/<pid>/status, reset through
/proc/<pid>/clear_refs after a warm-up upload) above its resident set just before.

Side by side, in the same run: PARALLEL uploads of SIZE_MIB MiB sent at once to a gateway with the
default MAX_UPLOADS_IN_FLIGHT (the surplus answered 429 before its body is read), to one without a
bound, and one upload alone (the baseline). The target: the bounded worker's peak stays within the
gateway's 512 MiB in Kubernetes divided among its HTTP_WORKERS (2 by default).
"""

import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.stack import running_stack
from bench.streams import gunicorn_gateway
from bench.util import MIB, ROOT, Row, verdict
from common.settings import GatewaySettings

SIZE_MIB = 16
PARALLEL = 40
UNBOUNDED = "100000"
GATEWAY_LIMIT_MIB = 512
HTTP_WORKERS = 2
MONGO_STANDIN = ROOT / "tools" / "standins" / "images" / "mongo"


def kib(pid: int, key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1))


@contextlib.contextmanager
def mongo_standin(folder: Path):
    """The mongo stand-in's server on a free port, in its own process; yields its URI."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (f"import sys; sys.path.insert(0, {str(MONGO_STANDIN)!r}); from mongo_standin import server; "
            f"server.serve(server.parse(['--port', '{port}', '--dbpath', {str(folder)!r}])).serve_forever()")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def video(folder: Path) -> bytes:
    from sample_media import make_video

    clip = make_video(folder / "clip.mp4", 2, size="64x48", rate=1)
    data = clip.read_bytes()
    return data + b"\0" * (SIZE_MIB * MIB - len(data))


def peak_above(url: str, pid: int, token: str, data: bytes, count: int) -> tuple[float, dict[int, int]]:
    """MiB of peak resident set above the resident set before `count` uploads sent at once; their statuses."""
    statuses: list[int] = []

    def send():
        response = requests.post(f"{url}/upload", files={"file": ("clip.mp4", data)},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=600)
        statuses.append(response.status_code)

    send()  # warm-up
    time.sleep(1)
    before = kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (kib(pid, "VmHWM") - before) / 1024, {s: statuses[1:].count(s) for s in sorted(set(statuses[1:]))}


def measure(env: dict, auth_url: str, folder: Path, bound: str, data: bytes) -> dict:
    env = {**env, "MAX_UPLOADS_IN_FLIGHT": bound}
    with gunicorn_gateway(env, auth_url, folder / f"gateway-{bound}.log") as (url, worker):
        token = requests.post(f"{url}/login", auth=(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"]), timeout=30).text
        alone, _ = peak_above(url, worker.pid, token, data, 1)
        parallel, statuses = peak_above(url, worker.pid, token, data, PARALLEL)
    return {"alone_mib": alone, "parallel_mib": parallel, "statuses": statuses}


def run(quick: bool) -> tuple[list[Row], dict]:
    bound = str(GatewaySettings.model_fields["max_uploads_in_flight"].default)
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as name:
        folder = Path(name)
        data = video(folder)
        with mongo_standin(folder / "db") as uri, running_stack("uploads", converters=0, mongodb_uri=uri) as (
                stack, env):
            print(f"uploads: {PARALLEL} parallel {SIZE_MIB} MiB uploads, bounded at {bound}", file=sys.stderr)
            bounded = measure(env, stack.auth_url, folder, bound, data)
            print(f"uploads: {PARALLEL} parallel {SIZE_MIB} MiB uploads, unbounded", file=sys.stderr, flush=True)
            unbounded = measure(env, stack.auth_url, folder, UNBOUNDED, data)
    case = f"{PARALLEL} x {SIZE_MIB} MiB at once, 1 process"
    share = GATEWAY_LIMIT_MIB / HTTP_WORKERS
    rows = [
        Row(section="uploads", case=case, comparison=f"peak RSS above idle, MAX_UPLOADS_IN_FLIGHT={bound}",
            value=f"{bounded['parallel_mib']:.0f} MiB", baseline=f"{bounded['alone_mib']:.0f} MiB for one",
            result=f"{bounded['parallel_mib'] / max(bounded['alone_mib'], 1):.1f}x; {bounded['statuses']}",
            target=f"<= {share:.0f} MiB", verdict=verdict(bounded["parallel_mib"] <= share)),
        Row(section="uploads", case=case, comparison="peak RSS above idle, unbounded",
            value=f"{unbounded['parallel_mib']:.0f} MiB", baseline=f"{unbounded['alone_mib']:.0f} MiB for one",
            result=f"{unbounded['parallel_mib'] / max(unbounded['alone_mib'], 1):.1f}x; {unbounded['statuses']}",
            verdict="info"),
    ]
    return rows, {"bounded": bounded, "unbounded": unbounded, "bound": bound}
