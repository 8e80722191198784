"""5. Streams: what held-open event streams cost the gateway as its image serves it.

The gateway is `python -m gateway` (gunicorn with its gevent worker) with HTTP_WORKERS=1, so that one
process carries everything; auth runs in this process (runlocal.stack, throwaway names, no
converter). One job is uploaded and stays queued, and STREAMS clients follow its events
(GET /jobs/<id>/events), each reading its first event before the measurement starts. Each
repetition, in turn:

  alone    a login and the upload of a 10 s clip, ROUNDS times, with no stream open (the baseline);
  loaded   the same with STREAMS streams open; then the gateway worker's CPU while idle with the
           streams open (each polls the job every 0.5 s), against the same idle time alone;
  freed    the streams' clients close their connections: seconds until the worker holds none.

Latency is the median login+upload of each phase; the ratio is the median of the repetitions' own
loaded/alone ratios.
"""

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from bench.inputs import Video
from bench.stack import Client, running_stack
from bench.util import ROOT, Row, median, ratio_text, seconds, verdict

STREAMS = 50
ROUNDS = 5
IDLE_SECONDS = 5
TARGET = 1.5
FREED_TARGET = 5.0
CLIP = Video("10 s clip", 10, "320x240", 25)
SERVICE_PATHS = [str(ROOT / "services" / name) for name in ("common", "gateway")]


@contextlib.contextmanager
def gunicorn_gateway(env: dict[str, str], auth_url: str, log: Path):
    """`python -m gateway` on a free port with one worker process; yields (url, worker process)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    variables = {**os.environ, **env, "AUTH_SVC_ADDRESS": auth_url, "GATEWAY_PORT": str(port), "HTTP_WORKERS": "1",
                 "LOG_LEVEL": "WARNING", "PYTHONPATH": os.pathsep.join(SERVICE_PATHS)}
    with log.open("wb") as out:
        master = subprocess.Popen([sys.executable, "-m", "gateway"], env=variables, stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the gateway did not start: {log.read_text()[-2000:]}")
        yield url, psutil.Process(master.pid).children()[0]
    finally:
        master.terminate()
        master.wait(30)


def latencies(client: Client, env: dict, path: Path) -> list[float]:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        client.upload(path)
        times.append(time.perf_counter() - started)
    return times


def worker_cores(worker: psutil.Process) -> float:
    before = worker.cpu_times()
    time.sleep(IDLE_SECONDS)
    after = worker.cpu_times()
    return (after.user + after.system - before.user - before.system) / IDLE_SECONDS


def connections(worker: psutil.Process, port: int) -> int:
    return sum(1 for c in worker.net_connections("tcp") if c.laddr.port == port and c.status != psutil.CONN_LISTEN)


def open_streams(url: str, client: Client, job_id: str) -> list:
    streams = []
    for _ in range(STREAMS):
        response = requests.get(f"{url}/jobs/{job_id}/events", headers=client._headers(), stream=True, timeout=30)
        lines = response.iter_lines(decode_unicode=True)
        next(line for line in lines if line.startswith("event:"))
        streams.append((response, lines))
    return streams


def one_repetition(url: str, worker: psutil.Process, client: Client, env: dict, path: Path, job_id: str) -> dict:
    port = int(url.rsplit(":", 1)[1])
    alone = median(latencies(client, env, path))
    idle_alone = worker_cores(worker)
    streams = open_streams(url, client, job_id)
    loaded = median(latencies(client, env, path))
    idle_loaded = worker_cores(worker)
    client.http.close()  # its kept-alive connection is not a stream's
    left = time.perf_counter()
    for response, _lines in streams:
        response.close()
    while connections(worker, port) > 0 and time.perf_counter() - left < 30:
        time.sleep(0.05)
    return {"alone": alone, "loaded": loaded, "idle_alone": idle_alone, "idle_loaded": idle_loaded,
            "freed": time.perf_counter() - left}


def run(quick: bool) -> tuple[list[Row], dict]:
    repeats = 2 if quick else 4
    path = CLIP.ensure()
    samples = []
    with running_stack("streams", converters=0) as (stack, env), \
            tempfile.TemporaryDirectory(prefix="bench-streams-") as folder, \
            gunicorn_gateway(env, stack.auth_url, Path(folder) / "gateway.log") as (url, worker):
        client = Client(url)
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        job_id = client.upload(path)  # no converter: it stays queued, and its streams stay open
        for repeat in range(repeats):
            print(f"streams: {STREAMS} event streams on one gateway process, run {repeat + 1}/{repeats}",
                  file=sys.stderr, flush=True)
            samples.append(one_repetition(url, worker, client, env, path, job_id))
    ratios = [s["loaded"] / s["alone"] for s in samples]
    alone, loaded = median([s["alone"] for s in samples]), median([s["loaded"] for s in samples])
    stream_cores = median([s["idle_loaded"] - s["idle_alone"] for s in samples])
    freed = max(s["freed"] for s in samples)
    case = f"{STREAMS} streams, 1 process"
    rows = [
        Row(section="streams", case=case, comparison="login + upload with streams / alone", value=seconds(loaded),
            baseline=seconds(alone), result=ratio_text(ratios), target=f"<= {TARGET:.1f}x",
            verdict=verdict(median(ratios) <= TARGET), numbers={"ratios": ratios}),
        Row(section="streams", case=case, comparison="gateway CPU kept busy by the open streams",
            value=f"{stream_cores:.3f} cores", baseline=f"{median([s['idle_alone'] for s in samples]):.3f} idle",
            result=f"{stream_cores / STREAMS * 1000:.2f} ms/s per stream", verdict="info"),
        Row(section="streams", case=case, comparison="clients gone -> worker holds no connection",
            value=seconds(freed), target=f"<= {FREED_TARGET:.0f} s", verdict=verdict(freed <= FREED_TARGET)),
    ]
    return rows, {"samples": samples}
