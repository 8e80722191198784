"""The whole stack for the pipeline and throughput benchmarks, as scripts/run-local wires it.

auth, gateway, converter(s) and notification run as threads of this process (runlocal.stack.start)
against the real MariaDB/MySQL and RabbitMQ on 127.0.0.1 (or where MYSQL_* and RABBITMQ_URL
point), with a throwaway database and throwaway queue names that are dropped afterwards; MongoDB is
the in-process mongomock, as with scripts/run-local.

A Probe sees inside without changing what runs: it wraps five methods in place to note when they
start or end (Jobs.create, Converter._convert, Converter._fetch, converter.handler.convert,
Converter._store), and listens to the converter's "conversion failed" log record. Each note is one
perf_counter() read. A job counts as done when Converter._convert returns: the MP3 is stored and
the job marked done (Jobs.finish) by then, and only the message's ack is left.
"""

import contextlib
import json
import logging
import secrets
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

from bench.util import MultipartUpload
from common import storage
from runlocal import throwaway
from runlocal.throwaway import server_env, throwaway_env


@contextlib.contextmanager
def running_stack(tag: str, converters: int, mongodb_uri: str = storage.MEMORY):
    """The four services as scripts/run-local starts them, in this process; yields (stack, env).

    MongoDB is the in-process mongomock here, whatever MONGODB_URI says, unless a benchmark passes a
    server's URI on purpose: the benchmarks measure the services, and the memory benchmark counts
    the stored bytes apart from them."""
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
        name = f"bench{tag}{secrets.token_hex(4)}"
        env = throwaway_env(server_env(mongodb_uri), name, str(Path(folder) / "heartbeat"), MAX_UPLOAD_MB="2048")
        with throwaway.running_stack(env, converters) as running:
            yield running, env


def delete_files(env: dict[str, str], job_id: str) -> None:
    """Drop a finished job's video and MP3 from the in-process GridFS.

    mongomock checks GridFS's unique index on every chunk insert by scanning the whole collection,
    so each stored file would make the next uploads slower (a MongoDB server uses the index); the
    runs of a benchmark should not depend on how many ran before them.
    """
    from common import storage
    from common.jobs import Jobs

    db = storage.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    job = Jobs(db).get(job_id)
    if job is not None:
        storage.delete_file(storage.bucket(db, storage.VIDEOS), job["video_fid"])  # the converter's gone
        storage.delete_file(storage.bucket(db, storage.MP3S), job.get("mp3_fid"))


class Client:
    """The gateway as a user's script sees it: login, streamed upload, job status.

    curl=True uploads with curl in a process of its own, as a user would: a client in this process
    competes with the stack for the interpreter lock (it sends in 8 KiB blocks), which on large
    files measures the client as much as the gateway."""

    def __init__(self, base_url: str, curl: bool = False):
        self.base = base_url
        self.http = requests.Session()
        self.token = ""
        self.curl = curl

    def login(self, email: str, password: str) -> None:
        response = self.http.post(f"{self.base}/login", auth=(email, password), timeout=30)
        response.raise_for_status()
        self.token = response.text

    def _headers(self, **extra) -> dict:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def upload(self, path: Path) -> str:
        if self.curl:
            return self._curl_upload(path)
        with MultipartUpload(path) as body:
            response = self.http.post(f"{self.base}/upload", data=body, timeout=600,
                                      headers=self._headers(**{"Content-Type": body.content_type}))
        if response.status_code != 202:
            raise RuntimeError(f"upload answered {response.status_code}: {response.text[:300]}")
        return response.json()["job_id"]

    def _curl_upload(self, path: Path) -> str:
        # No "Expect: 100-continue": curl would wait for an answer the dev server does not send.
        done = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {self.token}", "-H", "Expect:",
                               "-F", f"file=@{path};type=video/mp4", "-w", "\\n%{http_code}", f"{self.base}/upload"],
                              capture_output=True, text=True, check=True, timeout=600)
        body, _, status = done.stdout.rpartition("\n")
        if status != "202":
            raise RuntimeError(f"upload answered {status}: {body[:300]}")
        return json.loads(body)["job_id"]

    def job(self, job_id: str) -> dict:
        response = self.http.get(f"{self.base}/jobs/{job_id}", headers=self._headers(), timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_final(self, job_id: str, poll_seconds: float, timeout: float = 3600) -> tuple[dict, float]:
        """Poll GET /jobs/<id> until the job is done or failed; the job and when this client saw it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in ("done", "failed"):
                return job, time.perf_counter()
            time.sleep(poll_seconds)
        raise TimeoutError(f"job {job_id} not final after {timeout} s")


class Probe:
    """Timestamps (perf_counter) of each job's milestones, from log records and in-place wrappers."""

    MESSAGES = {"conversion failed": "failed"}
    WRAPPED = ("_convert", "_fetch", "_store")

    def __init__(self):
        self.events: dict[str, dict[str, float]] = defaultdict(dict)
        self.final: dict[str, threading.Event] = defaultdict(threading.Event)
        self._local = threading.local()
        self._lock = threading.Lock()

    def mark(self, job_id: str | None, name: str) -> None:
        now = time.perf_counter()
        if job_id is not None:
            with self._lock:
                self.events[job_id].setdefault(name, now)
                final = self.final[job_id] if name in ("converted", "failed") else None
            if final is not None:
                final.set()

    def wait(self, job_id: str, timeout: float = 600) -> dict[str, float]:
        with self._lock:
            final = self.final[job_id]
        if not final.wait(timeout):
            raise TimeoutError(f"job {job_id} never finished")
        return dict(self.events[job_id])

    def install(self) -> "Probe":
        probe = self

        class Listener(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                name = Probe.MESSAGES.get(record.msg)
                if name is not None:
                    probe.mark(getattr(record, "job_id", None), name)

        listener = Listener(logging.INFO)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on the console
        logger = logging.getLogger("converter.handler")
        logger.setLevel(logging.INFO)
        logger.addHandler(listener)

        from common.jobs import Jobs
        from converter import handler as converter_handler

        create = Jobs.create

        converter_class = converter_handler.Converter
        missing = [name for name in self.WRAPPED if not hasattr(converter_class, name)]
        if missing or not hasattr(converter_handler, "convert") or not hasattr(Jobs, "create"):
            raise RuntimeError(f"the services changed shape (missing {missing or 'convert/create'}): "
                               "update bench.stack.Probe")
        convert_job, fetch, store = converter_class._convert, converter_class._fetch, converter_class._store
        ffmpeg_convert = converter_handler.convert

        def wrapped_convert_job(self, job, cancel):
            job_id = probe._local.job_id = str(job["_id"])
            probe.mark(job_id, "convert_start")
            try:
                outcome = convert_job(self, job, cancel)
            except BaseException:
                probe.mark(job_id, "failed")
                raise
            finally:
                probe._local.job_id = None
            probe.mark(job_id, "converted")
            return outcome

        def wrapped_fetch(self, *args, **kwargs):
            result = fetch(self, *args, **kwargs)
            probe.mark(getattr(probe._local, "job_id", None), "fetched")
            return result

        def wrapped_ffmpeg(*args, **kwargs):
            job_id = getattr(probe._local, "job_id", None)
            probe.mark(job_id, "ffmpeg_start")
            try:
                return ffmpeg_convert(*args, **kwargs)
            finally:
                probe.mark(job_id, "ffmpeg_end")

        def wrapped_store(self, *args, **kwargs):
            result = store(self, *args, **kwargs)
            probe.mark(getattr(probe._local, "job_id", None), "stored")
            return result

        def wrapped_create(self, *args, **kwargs):
            job = create(self, *args, **kwargs)
            probe.mark(str(job["_id"]), "recorded")
            return job

        converter_class._convert = wrapped_convert_job
        converter_class._fetch = wrapped_fetch
        converter_class._store = wrapped_store
        converter_handler.convert = wrapped_ffmpeg
        Jobs.create = wrapped_create
        return self


_probe: Probe | None = None


def probe() -> Probe:
    """The one Probe of this process (installing it twice would wrap the wrappers)."""
    global _probe
    if _probe is None:
        _probe = Probe().install()
    return _probe
