"""3. Memory: the gateway's and the converter's peak memory on a small and a large input.

Each measurement runs in a fresh child process (`python -m bench.memory gateway|converter`)
so that nothing else lives in the process whose memory is read. The figure is the kernel's peak
resident set (VmHWM in /proc/self/status), reset just before the work (`5` into
/proc/self/clear_refs) after a warm-up with a small file, a gc.collect() and a malloc_trim(0):
peak RSS during the work minus RSS just before it.

The stored bytes stay out of that figure. With MONGODB_URI=memory, mongomock keeps every GridFS
chunk in the Python heap, so RSS would grow by the file size whatever the services do. Here the
`<bucket>.chunks` collections are a mongomock collection that writes each chunk's `data` to a
spill file on disk as it is inserted and reads it back (os.pread) when a find() hands the chunk
to GridFS, which is what a MongoDB server does for the driver: the services' code, pymongo's
GridFS code and mongomock run unchanged, only the chunk bytes live outside the heap. What stays
in the heap is the stand-in's: one small document per 255 KiB chunk, and the list of a file's chunk
documents that mongomock's cursor builds at once when GridFS starts reading (about 0.7 KB a chunk,
2.4 MiB per GB), counted against the service. The uniqueness check that mongomock runs on every
insert (a scan of the whole collection, quadratic in the file size) is skipped in the spill
collection: it is mongomock's cost, not the services', and no memory.

- gateway: the gateway's Flask app (its build, as scripts/run-local makes it) served by werkzeug's threaded server
  as scripts/run-local serves it; auth and the broker are stand-ins that accept every token and
  every message (they hold no file data). The parent streams the upload with a Content-Length.
- converter: the converter's handler (Converter.__call__) for one job whose video was stored in
  the spill-backed GridFS before the reset: fetch to a temp file, ffmpeg, store the MP3. ffmpeg is
  a child process; its own peak RSS (getrusage RUSAGE_CHILDREN ru_maxrss) is reported apart.
"""

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import requests

from bench.inputs import BigVideo, Video
from bench.util import MB, MIB, MultipartUpload, Row, verdict

TARGET_MB = 50
WARM_UP = Video("warm-up clip", 4, "320x240", 25)
FULL_SIZES = (BigVideo(100), BigVideo(1000))
# Both above pymongo's GridFS upload buffer (48 MB of chunks before each insert_many), so that the
# quick comparison shows the same thing as the full one.
QUICK_SIZES = (BigVideo(100), BigVideo(1000))
SERVICES = ("gateway", "converter")
# The converter reads a faststart video straight from GridFS through a pipe, any other through a
# temp file: both ways are measured ("converter, piped" on faststart copies of the same inputs).
PIPED = "converter, piped"
MEASURED = (*SERVICES, PIPED)


# ---------------------------------------------------------------- child side

def rss_kib() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) for key in ("VmRSS", "VmHWM")}


def settle_and_reset() -> int:
    """Free what can be freed, reset the peak; the RSS the measured work starts from, KiB."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only: give freed heap back to the system
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return rss_kib()["VmRSS"]


def spill_backed_db(name: str, spill_dir: Path):
    """The in-process mongomock database of scripts/run-local, with GridFS chunk bytes kept on disk."""
    import mongomock

    from common import storage
    from runlocal import mongo

    class Rehydrating:
        """A cursor over chunk documents that reads each chunk's bytes back as it is handed out."""

        def __init__(self, cursor, fd: int):
            self._cursor, self._fd = cursor, fd

        def __iter__(self):
            return self

        def next(self):
            document = self._cursor.next()
            spilled = document.get("data")
            if isinstance(spilled, dict) and "spill_offset" in spilled:
                data = os.pread(self._fd, spilled["spill_length"], spilled["spill_offset"])
                document = {**document, "data": data}
            return document

        __next__ = next

        def close(self):
            self._cursor.close()

    class SpillingChunks(mongomock.Collection):
        def __init__(self, db, collection_name: str):
            super().__init__(db, collection_name, _db_store=db.store)
            handle = tempfile.NamedTemporaryFile(dir=spill_dir, prefix="chunks-", delete=False)  # noqa: SIM115
            self._fd, self._end, self._spill_lock = handle.fileno(), 0, threading.Lock()
            self._handle = handle

        def with_options(self, *args, **kwargs):
            return self

        def _spill(self, document: dict) -> dict:
            data = bytes(document["data"])
            with self._spill_lock:
                offset, self._end = self._end, self._end + len(data)
            os.pwrite(self._fd, data, offset)
            return {**document, "data": {"spill_offset": offset, "spill_length": len(data)}}

        def insert_one(self, document, *args, **kwargs):
            return super().insert_one(self._spill(document), *args, **kwargs)

        def insert_many(self, documents, *args, **kwargs):
            return super().insert_many([self._spill(document) for document in documents], *args, **kwargs)

        def find(self, *args, **kwargs):
            return Rehydrating(super().find(*args, **kwargs), self._fd)

        def _delete(self, *args, **kwargs):
            # mongomock deletes what its own find() returns: the chunks' bytes need not come back for
            # that (a server deletes them where they are). Without this, the converter's removal of a
            # converted video read the whole file back into the heap.
            self.find = super().find
            try:
                return super()._delete(*args, **kwargs)
            finally:
                del self.find

        def _ensure_uniques(self, new_data):
            pass

    class SpillingDatabase(mongomock.Database):
        """A database whose GridFS chunk collections are SpillingChunks."""

        def __init__(self):
            super().__init__(mongo.client(), name, _store=None)
            self._spilling = {}

        @property
        def store(self):
            return self._store

        def get_collection(self, collection_name, *args, **kwargs):
            if collection_name not in SPILLED:
                return super().get_collection(collection_name, *args, **kwargs)
            if collection_name not in self._spilling:
                self._spilling[collection_name] = SpillingChunks(self, collection_name)
            return self._spilling[collection_name]

    SPILLED = {f"{bucket_name}.chunks" for bucket_name in (storage.VIDEOS, storage.MP3S)}
    return SpillingDatabase()


class StandInAuth:
    """Auth for a gateway measured alone: every token is the bench user's."""

    def validate(self, token):
        return {"sub": "bench@example.com", "uid": "1", "admin": False}

    def ping(self):
        pass


class StandInPublisher:
    """The broker for a gateway measured alone: takes every message."""

    def publish(self, queue, message, priority=None):
        pass

    def ping(self):
        pass

    def consumer_count(self, queue):
        return 1


def child_gateway(spill_dir: Path) -> None:
    """Serve the gateway; /__bench/reset and /__bench/report answer the memory figures."""
    import logging

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    from common.settings import GatewaySettings, load
    from gateway.__main__ import build

    settings = load(GatewaySettings, rabbitmq_url="amqp://unused/", auth_svc_address="http://127.0.0.1:9/",
                    mongodb_uri="memory", mongodb_db="bench_memory", max_upload_mb=4096)
    app = build(settings, db=spill_backed_db("bench_memory", spill_dir), publisher=StandInPublisher(),
                auth=StandInAuth())
    state = {}

    def bench_app(environ, start_response):
        request = Request(environ)
        if request.path == "/__bench/reset":
            state["before"] = settle_and_reset()
            return Response(json.dumps({"before_kib": state["before"]}))(environ, start_response)
        if request.path == "/__bench/report":
            now = rss_kib()
            report = {"before_kib": state["before"], "peak_kib": now["VmHWM"], "after_kib": now["VmRSS"]}
            return Response(json.dumps(report))(environ, start_response)
        return app(environ, start_response)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log
    server = make_server("127.0.0.1", 0, bench_app, threaded=True)
    print(json.dumps({"port": server.server_port}), flush=True)
    server.serve_forever()


def child_converter(video: Path, warm_up: Path, spill_dir: Path) -> None:
    from common import storage
    from common.broker import encode
    from common.handler import Action, Delivery
    from common.jobs import Jobs
    from common.settings import ConverterSettings, load
    from converter.__main__ import build

    db = spill_backed_db("bench_memory", spill_dir)
    jobs, videos = Jobs(db), storage.bucket(db, storage.VIDEOS)
    settings = load(ConverterSettings, rabbitmq_url="amqp://unused/", mongodb_uri="memory",
                    mongodb_db="bench_memory")
    converter = build(settings, db=db).handler

    def job_for(path: Path) -> dict:
        with path.open("rb") as source:
            fid = videos.upload_from_stream(path.name, source)
        return jobs.create("bench@example.com", path.name, fid)

    def convert(job: dict) -> None:
        message = {"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": None,
                   "owner": job["owner"]}
        outcome = converter(Delivery(body=encode(message), redelivered=False), threading.Event())
        if outcome.action is not Action.ACK:
            raise SystemExit(f"the converter did not convert {job['filename']}: {outcome.reason}")
        outcome.then()  # the tidying up the consumer does once the announcement is sent

    convert(job_for(warm_up))
    job = job_for(video)
    before = settle_and_reset()
    convert(job)
    now = rss_kib()
    ffmpeg_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"before_kib": before, "peak_kib": now["VmHWM"], "after_kib": now["VmRSS"],
                      "ffmpeg_peak_kib": ffmpeg_peak}), flush=True)


# ---------------------------------------------------------------- parent side

def _child(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.memory", *args], stdout=subprocess.PIPE,
                            text=True, **kwargs)


def measure_gateway(video: Path, warm_up: Path, spill_dir: Path) -> dict:
    child = _child("gateway", "--spill-dir", str(spill_dir))
    try:
        base = f"http://127.0.0.1:{json.loads(child.stdout.readline())['port']}"
        http = requests.Session()

        def upload(path: Path) -> None:
            with MultipartUpload(path) as body:
                response = http.post(f"{base}/upload", data=body, timeout=1800,
                                     headers={"Authorization": "Bearer bench", "Content-Type": body.content_type})
            if response.status_code != 202:
                raise RuntimeError(f"upload answered {response.status_code}: {response.text[:300]}")

        upload(warm_up)
        http.get(f"{base}/__bench/reset", timeout=60).raise_for_status()
        upload(video)
        return http.get(f"{base}/__bench/report", timeout=60).json()
    finally:
        child.terminate()
        child.wait(timeout=30)


def measure_converter(video: Path, warm_up: Path, spill_dir: Path) -> dict:
    child = _child("converter", "--spill-dir", str(spill_dir), "--video", str(video), "--warm-up", str(warm_up))
    out, _ = child.communicate(timeout=3600)
    if child.returncode != 0:
        raise RuntimeError(f"the converter's memory run failed ({child.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def run(quick: bool) -> tuple[list[Row], dict]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    warm_up = WARM_UP.ensure()
    results = {}
    for service in MEASURED:
        measure = measure_gateway if service == "gateway" else measure_converter
        if service == PIPED:
            sizes = [BigVideo(size.megabytes, faststart=True) for size in sizes]
        paths = [size.ensure() for size in sizes]
        for size, path in zip(sizes, paths, strict=True):
            print(f"memory: {service}, {size.label} input", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-memory-") as spill:
                figures = measure(path, warm_up, Path(spill))
            figures["growth_mib"] = (figures["peak_kib"] - figures["before_kib"]) / 1024
            figures["input_bytes"] = path.stat().st_size
            results.setdefault(service, {})[size.label] = figures
    rows = []
    small, large = sizes[0].label, sizes[1].label
    for service in MEASURED:
        low, high = results[service][small], results[service][large]
        difference = high["growth_mib"] - low["growth_mib"]
        rows.append(Row(
            section="memory", case=service, comparison=f"peak RSS growth, {large} vs {small} input",
            value=f"{high['growth_mib']:.1f} MiB", baseline=f"{low['growth_mib']:.1f} MiB",
            result=f"{difference:+.1f} MiB", target=f"< {TARGET_MB} MB",
            verdict=verdict(abs(difference) * MIB < TARGET_MB * MB),
            numbers={"large_mib": high["growth_mib"], "small_mib": low["growth_mib"], "difference_mib": difference},
        ))
        if service != "gateway":
            rows.append(Row(
                section="memory", case=f"{service}: its ffmpeg", comparison=f"peak RSS, {large} vs {small} input",
                value=f"{high['ffmpeg_peak_kib'] / 1024:.1f} MiB", baseline=f"{low['ffmpeg_peak_kib'] / 1024:.1f} MiB",
                result=f"{(high['ffmpeg_peak_kib'] - low['ffmpeg_peak_kib']) / 1024:+.1f} MiB",
            ))
    return rows, {"method": "peak RSS (VmHWM) minus RSS before, child process, GridFS chunk bytes spilled to disk",
                  "target_mb": TARGET_MB, "sizes": [s.label for s in sizes], "results": results}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="One memory measurement (run by scripts/bench).")
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--spill-dir", type=Path, required=True)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--warm-up", type=Path)
    args = parser.parse_args(argv)
    if args.service == "gateway":
        child_gateway(args.spill_dir)
    else:
        child_converter(args.video, args.warm_up, args.spill_dir)


if __name__ == "__main__":
    main()
