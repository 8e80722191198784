"""The whole stack for the pipeline and throughput benchmarks, as scripts/run-local wires it.

auth, gateway, converter(s) and notification run as threads of this process (runlocal.stack.start)
against the real MariaDB/MySQL and RabbitMQ on 127.0.0.1 (or where MYSQL_* and RABBITMQ_URL
point), with a throwaway database and throwaway queue names that are dropped afterwards; MongoDB is
the in-process mongomock, as with scripts/run-local.

A Probe sees inside without changing what runs: it reads the spans the services emit anyway (the same
ones Jaeger shows), through an exporter of its own on each service's TracerProvider. A job counts as
done when the converter announces its MP3: the MP3 is stored and the job marked done by then.
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
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from bench.util import MultipartUpload
from runlocal import mongo, throwaway, traces
from runlocal.throwaway import server_env, throwaway_env


@contextlib.contextmanager
def running_stack(tag: str, converters: int, mongodb_uri: str = mongo.MEMORY):
    """The four services as scripts/run-local starts them, in this process; yields (stack, env).

    MongoDB is the in-process mongomock here, whatever MONGODB_URI says, unless a benchmark passes a
    server's URI on purpose: the benchmarks measure the services, and the memory benchmark counts
    the stored bytes apart from them."""
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
        name = f"bench{tag}{secrets.token_hex(4)}"
        env = throwaway_env(server_env(mongodb_uri), name, str(Path(folder) / "heartbeat"), MAX_UPLOAD_MB="2048")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on the console
        with throwaway.running_stack(env, converters) as running:
            probe().attach(env["VIDEO_QUEUE"], env["MP3_QUEUE"])
            yield running, env


def delete_files(env: dict[str, str], job_id: str) -> None:
    """Drop a finished job's video and MP3 from the in-process GridFS.

    mongomock checks GridFS's unique index on every chunk insert by scanning the whole collection,
    so each stored file would make the next uploads slower (a MongoDB server uses the index); the
    runs of a benchmark should not depend on how many ran before them.
    """
    from common import storage
    from common.jobs import Jobs

    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
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


class Probe(SpanExporter):
    """Each job's milestones, read from the spans the services emit (an exporter on every service's
    TracerProvider of this process), as perf_counter() readings:

      recorded       the gateway publishes the job's message: the video is stored, the job recorded
      convert_start  the converter takes the message (its "<video queue> process" span starts)
      ffmpeg_start, ffmpeg_end   the "ffmpeg" span
      converted      the converter announces the MP3 ("<mp3 queue> send"): stored, the job marked done
      failed         the converter's message span ends with another outcome than ack

    The spans of one upload share a trace; the job's id comes from the spans that carry it."""

    def __init__(self):
        self._by_trace: dict[int, dict[str, float]] = defaultdict(dict)
        self._job_of_trace: dict[int, str] = {}
        self._final: dict[str, threading.Event] = defaultdict(threading.Event)
        self._lock = threading.Lock()
        self._attached: set[int] = set()
        # Spans are timed by the wall clock in ns; the benchmarks by perf_counter().
        self._offset = time.perf_counter() - time.time_ns() / 1e9
        self.queues: tuple[str, str] = ("", "")

    def attach(self, video_queue: str, mp3_queue: str) -> None:
        """Read the spans of every service's TracerProvider of this process (once each)."""
        self.queues = (video_queue, mp3_queue)
        for provider in traces.providers():
            if id(provider) not in self._attached:
                provider.add_span_processor(SimpleSpanProcessor(self))
                self._attached.add(id(provider))

    def export(self, spans) -> SpanExportResult:
        video, mp3 = self.queues
        for span in spans:
            self._note(span, video, mp3)
        return SpanExportResult.SUCCESS

    def _note(self, span, video: str, mp3: str) -> None:
        started, trace_id = span.start_time / 1e9 + self._offset, span.context.trace_id
        names = {f"{video} send": "recorded", f"{video} process": "convert_start", "ffmpeg": "ffmpeg_start",
                 f"{mp3} send": "converted"}
        with self._lock:
            marks = self._by_trace[trace_id]
            if span.name in names:
                marks.setdefault(names[span.name], started)
            if span.name == "ffmpeg":
                marks.setdefault("ffmpeg_end", span.end_time / 1e9 + self._offset)
            job_id = (span.attributes or {}).get("job_id")
            if job_id:
                self._job_of_trace[trace_id] = job_id
            if span.name != f"{video} process" or not job_id:
                return
            if span.attributes.get("mp3converter.outcome") != "ack":
                marks.setdefault("failed", span.end_time / 1e9 + self._offset)
            final = self._final[job_id]
        final.set()

    def wait(self, job_id: str, timeout: float = 600) -> dict[str, float]:
        """The job's milestones, once the converter has settled its message."""
        with self._lock:
            final = self._final[job_id]
        if not final.wait(timeout):
            raise TimeoutError(f"job {job_id} never finished")
        with self._lock:
            return {name: at for trace_id, job in self._job_of_trace.items() if job == job_id
                    for name, at in self._by_trace[trace_id].items()}

    def shutdown(self) -> None:
        pass


_probe = Probe()


def probe() -> Probe:
    """The one Probe of this process; running_stack attaches it to the stack's services."""
    return _probe
