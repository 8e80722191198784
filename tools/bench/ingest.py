"""10. The upload path against the wire: the gateway's ingest of a body against a plain read of it.

The same multipart body (curl -F, in a process of its own, as a user sends it) goes, alternately, to:
  - the floor: a socket server in this process that reads the request's head, then the body into a
    preallocated buffer with recv_into until Content-Length is reached, and answers 202;
  - the gateway: its Flask app (gateway.app.create_app) served by werkzeug's threaded server as
    scripts/run-local serves it, storing into the in-process mongomock GridFS; auth and the broker are
    stand-ins that accept every token and message. Socket reads, multipart decoding, sniffing,
    GridFS writes, the job's record: the whole route;
  - the gateway without the store: the same app whose video bucket takes the chunks and keeps none.
    mongomock runs in the gateway's process, and its cost is not the product's;
  - the gateway storing into a MongoDB wire server in a process of its own (the mongo stand-in of
    tools/standins): the gateway's process then does what it does with a MongoDB server (pymongo
    encodes and sends each chunk). The stand-in is mongomock behind the wire protocol, slower than a
    MongoDB server: its speed bounds this row's MB/s, while the gateway's CPU per body is the product's.
MB/s is the body's size over curl's total time. Target: the gateway at >= 0.5x the floor's speed.
"""

import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.camera import mongodb_label
from bench.inputs import BigVideo
from bench.memory import StandInAuth, StandInPublisher
from bench.uploads import mongo_standin
from bench.util import MB, Row, median, rotate, split_cpu_seconds, verdict

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


class NullVideos:
    """A video bucket that takes an upload's chunks as GridFS does and keeps none of them."""

    def __init__(self, chunk_size: int):
        self.chunk_size = chunk_size

    def upload_from_chunks(self, filename, chunks, metadata):
        from bson import ObjectId

        for _ in chunks:
            pass
        return ObjectId()

    def delete(self, file_id) -> None:
        pass


def gateway_server(store: bool = True, mongodb_uri: str | None = None):
    import dataclasses
    import logging

    from werkzeug.serving import make_server

    from common import storage
    from common.settings import GatewaySettings, load
    from gateway.__main__ import build
    from gateway.context import EXTENSION
    from runlocal import mongo

    settings = load(GatewaySettings, rabbitmq_url="amqp://unused/", auth_svc_address="http://127.0.0.1:9/",
                    mongodb_uri="memory", mongodb_db="bench_ingest", max_upload_mb=4096,
                    max_active_jobs_per_user=1000)
    db = storage.connect(mongodb_uri, "bench_ingest") if mongodb_uri else mongo.connect(mongo.MEMORY, "bench_ingest")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = build(settings, db=db, publisher=StandInPublisher(), auth=StandInAuth())
    if not store:
        deps = app.extensions[EXTENSION]
        app.extensions[EXTENSION] = dataclasses.replace(deps, videos=NullVideos(storage.CHUNK_BYTES[storage.VIDEOS]))
    server = make_server("127.0.0.1", 0, app, threaded=True)
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
    standin = mongo_standin(Path(tempfile.mkdtemp(prefix="bench-ingest-")))
    server, db = gateway_server()
    storeless, _ = gateway_server(store=False)
    wired, wired_db = gateway_server(mongodb_uri=standin.__enter__())
    servers = {"gateway": (server, db), "no store": (storeless, None), "server": (wired, wired_db)}
    urls = {"floor": f"http://127.0.0.1:{floor.port}/upload",
            **{name: f"http://127.0.0.1:{each.server_port}/upload" for name, (each, _) in servers.items()}}
    samples = {"floor": [], "gateway": [], "no store": [], "server": []}
    cpu = {name: [] for name in samples}  # (this process: the server's thread; curl), seconds per body
    try:
        for index in range(runs + 1):  # the first round warms up
            print(f"ingest: {video.label}, round {index}/{runs}", file=sys.stderr, flush=True)
            for name in rotate(list(samples), index):
                before = split_cpu_seconds()
                seconds = send(urls[name], path)
                after = split_cpu_seconds()
                if index:
                    samples[name].append(size / seconds / MB)
                    cpu[name].append((after[0] - before[0], after[1] - before[1]))
                store = servers.get(name, (None, None))[1]
                if store is not None:
                    for stored in store["videos.files"].find({}, {"_id": 1}):
                        storage.delete_file(storage.bucket(store, storage.VIDEOS), stored["_id"])
    finally:
        for each, _ in servers.values():
            each.shutdown()
        standin.__exit__(None, None, None)
        floor.close()
    ratios = {name: [g / f for g, f in zip(samples[name], samples["floor"], strict=True)]
              for name in ("gateway", "no store", "server")}
    label = mongodb_label("memory")
    spread = {name: f"{median(v):.0f} MB/s ({min(v):.0f}-{max(v):.0f})" for name, v in samples.items()}
    comparisons = {"gateway": f"gateway / plain socket read [{label}]",
                   "no store": "gateway without the store (chunks taken, none kept) / plain socket read",
                   "server": "gateway storing into a MongoDB wire server in its own process (the mongo stand-in, "
                             "mongomock: its speed bounds this row) / plain socket read"}
    rows = [Row(section="ingest", case=f"{video.label} body, curl -F", comparison=comparisons[name],
                value=spread[name], baseline=spread["floor"],
                result=f"{median(r):.2f}x ({min(r):.2f}-{max(r):.2f})", target=f">= {TARGET:.1f}x",
                verdict=verdict(median(r) >= TARGET), numbers={"ratios": r})
            for name, r in ratios.items()]
    server_cpu = {name: median(server for server, _ in values) for name, values in cpu.items()}
    rows.append(Row(section="ingest", case=f"{video.label} body, curl -F",
                    comparison="CPU per body in the server's process: gateway / without the store / storing into "
                               "the wire server; floor; curl",
                    value=f"{server_cpu['gateway']:.2f} s / {server_cpu['no store']:.2f} s / "
                          f"{server_cpu['server']:.2f} s",
                    baseline=f"{server_cpu['floor']:.2f} s; curl {median(c for _, c in cpu['floor']):.2f} s"))
    return rows, {"input": video.label, "bytes": size, "runs": runs, "samples": samples, "ratios": ratios,
                  "cpu": cpu}
