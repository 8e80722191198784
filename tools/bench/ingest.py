"""10. The upload path against the wire: the gateway's ingest of a body against a plain read of it.

The same multipart body (curl -F, in a process of its own, as a user sends it) goes, alternately, to:
  - the floor: a socket server in this process that reads the request's head, then the body into a
    preallocated buffer with recv_into until Content-Length is reached, and answers 202;
  - the gateway: its Flask app (gateway.app.create_app) served by werkzeug's threaded server as
    scripts/run-local serves it, storing into the in-process mongomock GridFS; auth and the broker are
    stand-ins that accept every token and message. Socket reads, multipart decoding, sniffing,
    GridFS writes, the job's record: the whole route.
MB/s is the body's size over curl's total time. Target: the gateway at >= 0.5x the floor's speed.
"""

import socket
import subprocess
import sys
import threading

from bench.camera import mongodb_label
from bench.inputs import BigVideo
from bench.memory import StandInAuth, StandInPublisher
from bench.util import MB, Row, median, rotate, verdict

FULL = BigVideo(500)
QUICK = BigVideo(100)
TARGET = 0.5
RECV_BYTES = 1024 * 1024
RESPONSE = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}")


class Floor:
    """Reads whole requests and throws their bodies away, as fast as a Python socket reads."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = bytearray(RECV_BYTES)
        view = memoryview(buffer)
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with connection:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += connection.recv(65536)
                header, _, rest = head.partition(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                left = length - len(rest)
                while left > 0:
                    left -= connection.recv_into(view, min(left, RECV_BYTES))
                connection.sendall(RESPONSE)

    def close(self) -> None:
        self._server.close()


def gateway_server():
    import logging

    from werkzeug.serving import make_server

    from common.settings import GatewaySettings, load
    from gateway.__main__ import build
    from runlocal import mongo

    settings = load(GatewaySettings, rabbitmq_url="amqp://unused/", auth_svc_address="http://127.0.0.1:9/",
                    mongodb_uri="memory", mongodb_db="bench_ingest", max_upload_mb=4096,
                    max_active_jobs_per_user=1000)
    db = mongo.connect(mongo.MEMORY, "bench_ingest")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, build(settings, db=db, publisher=StandInPublisher(), auth=StandInAuth()),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, db


def send(url: str, path) -> float:
    """curl's total time to send `path` as a multipart upload and read the answer."""
    done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "Authorization: Bearer bench", "-H", "Expect:",
                           "-F", f"file=@{path};type=video/mp4", "-w", "%{http_code} %{time_total}", url],
                          capture_output=True, text=True, check=True, timeout=600)
    status, total = done.stdout.split()
    if status != "202":
        raise RuntimeError(f"{url} answered {status}")
    return float(total)


def run(quick: bool) -> tuple[list[Row], dict]:
    from common import storage

    video = QUICK if quick else FULL
    runs = 3 if quick else 7
    path = video.ensure()
    size = path.stat().st_size
    floor = Floor()
    server, db = gateway_server()
    urls = {"floor": f"http://127.0.0.1:{floor.port}/upload", "gateway": f"http://127.0.0.1:{server.server_port}/upload"}
    samples = {"floor": [], "gateway": []}
    try:
        for index in range(runs + 1):  # the first round warms up
            print(f"ingest: {video.label}, round {index}/{runs}", file=sys.stderr, flush=True)
            for name in rotate(list(samples), index):
                seconds = send(urls[name], path)
                if index:
                    samples[name].append(size / seconds / MB)
                if name == "gateway":
                    for stored in db["videos.files"].find({}, {"_id": 1}):
                        storage.delete_file(storage.bucket(db, storage.VIDEOS), stored["_id"])
    finally:
        server.shutdown()
        floor.close()
    ratios = [g / f for g, f in zip(samples["gateway"], samples["floor"], strict=True)]
    ratio = median(ratios)
    label = mongodb_label("memory")
    spread = {name: f"{median(v):.0f} MB/s ({min(v):.0f}-{max(v):.0f})" for name, v in samples.items()}
    rows = [Row(section="ingest", case=f"{video.label} body, curl -F",
                comparison=f"gateway / plain socket read [{label}]",
                value=spread["gateway"], baseline=spread["floor"],
                result=f"{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})", target=f">= {TARGET:.1f}x",
                verdict=verdict(ratio >= TARGET), numbers={"ratios": ratios})]
    return rows, {"input": video.label, "bytes": size, "runs": runs, "samples": samples, "ratios": ratios}
