"""Shared by the suites that use real servers (integration, faults): MariaDB/MySQL and RabbitMQ on
127.0.0.1 (or where MYSQL_* / RABBITMQ_URL point), throwaway databases and queue names, the stack
as scripts/run-local wires it, and a client that speaks to the gateway as curl does. MongoDB is the
in-process mongomock unless MONGODB_URI names a server. With CI=true an unreachable server fails
the run instead of skipping."""

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pika
import pytest
import requests

from common.broker import connection_parameters
from runlocal.throwaway import drop, server_env, throwaway_env, unreachable

ROOT = Path(__file__).resolve().parents[1]
RUN = secrets.token_hex(4)
ADMIN = ("admin@example.com", "admin-password-" + RUN)
MONGO_STANDIN = ROOT / "tools" / "standins" / "images" / "mongo"
_mongod: list = []


def served_mongodb_uri() -> str:
    """A MongoDB server for a service run as its image runs it (python -m gateway, ...), which knows only
    mongodb:// URIs (run-local's `memory` is an in-process one): the mongo stand-in's mongod
    (mongomock behind the wire protocol) in a process of its own, started once and stopped at exit."""
    if not _mongod:
        port = free_port()
        folder = tempfile.mkdtemp(prefix="mongod-")
        process = subprocess.Popen([sys.executable, "-m", "mongo_standin.server", "--port", str(port),
                                    "--dbpath", folder], env={**os.environ, "PYTHONPATH": str(MONGO_STANDIN)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(lambda: (process.terminate(), process.wait(30), shutil.rmtree(folder, ignore_errors=True)))
        deadline = time.monotonic() + 30
        while not _accepts(port):
            assert process.poll() is None and time.monotonic() < deadline, "the mongo stand-in did not start"
            time.sleep(0.1)
        _mongod.append(f"mongodb://127.0.0.1:{port}/")
    return _mongod[0]


def wait_answering(url: str, process: subprocess.Popen, output: Path | None = None, timeout: float = 60) -> None:
    """Until `url`/healthz answers 200 (refused, or no worker booted yet: asked again); fails with the end
    of the process's `output` when it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    told = output.read_text()[-3000:] if output else ""
    pytest.fail(f"{url} did not answer /healthz ({'exited' if process.poll() is not None else 'timed out'}): {told}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers():
    env = server_env()
    missing = unreachable(env)
    if missing:
        reason = f"{' and '.join(missing)} not reachable (see MYSQL_HOST/RABBITMQ_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the integration servers: {reason}")
        pytest.skip(reason)
    return env


def queue_depth(env, queue: str) -> int:
    connection = pika.BlockingConnection(connection_parameters(env["RABBITMQ_URL"]))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


class Client:
    """The gateway as curl sees it."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base = base_url
        self.token = token
        self.http = requests.Session()

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @classmethod
    def as_admin(cls, base_url: str, env: dict) -> "Client":
        """A client logged in as the stack's administrator (ADMIN_EMAIL, ADMIN_PASSWORD of ENV)."""
        client = cls(base_url)
        response = client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        assert response.status_code == 200, response.text
        return client

    def login(self, email: str, password: str) -> requests.Response:
        response = self.http.post(f"{self.base}/login", auth=(email, password), timeout=30)
        if response.status_code == 200:
            self.token = response.text
        return response

    def upload(self, path, name=None, field="file") -> requests.Response:
        with open(path, "rb") as video:
            return self.http.post(f"{self.base}/upload", files={field: (name or path.name, video)},
                                  headers=self.headers(), timeout=120)

    def job(self, job_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/jobs/{job_id}", headers=self.headers(), timeout=30)

    def jobs(self, **params) -> requests.Response:
        """One page of GET /jobs (limit, cursor)."""
        return self.http.get(f"{self.base}/jobs", params=params, headers=self.headers(), timeout=30)

    def all_jobs(self) -> list[dict]:
        """Every job of the caller, newest first, page after page."""
        jobs, cursor = [], None
        while True:
            page = self.jobs(limit=100, **({"cursor": cursor} if cursor else {}))
            page.raise_for_status()
            jobs += page.json()["jobs"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return jobs

    def delete(self, job_id: str) -> requests.Response:
        return self.http.delete(f"{self.base}/jobs/{job_id}", headers=self.headers(), timeout=30)

    def wait_final(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id).json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")

    def download(self, fid) -> requests.Response:
        params = {} if fid is None else {"fid": fid}
        return self.http.get(f"{self.base}/download", params=params, headers=self.headers(), timeout=60)


def stack_environment(servers, tmp_path_factory, suffix: str, **overrides) -> dict[str, str]:
    """The environment of one stack under test: throwaway names, fast throttling, small uploads."""
    heartbeat = str(tmp_path_factory.mktemp("heartbeat") / "heartbeat")
    return throwaway_env(servers, f"{suffix}{RUN}", heartbeat, ADMIN_EMAIL=ADMIN[0], ADMIN_PASSWORD=ADMIN[1],
                         **overrides)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_local(env: dict[str, str], *args, prefix=()) -> subprocess.Popen:
    """scripts/run-local as a user starts it, without a .env: everything from `env` (the consumers' metrics on
    a free port unless `env` names one). `prefix` runs it under another command (a read-only root
    filesystem, for instance)."""
    env = {"METRICS_PORT": str(free_port()), **env}
    return subprocess.Popen([*prefix, str(ROOT / "scripts/run-local"), "--env-file", "/nonexistent/.env", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def ready_run_local(env: dict[str, str], *args, prefix=()):
    """scripts/run-local on free ports, once it says it is ready: (process, logged-in admin client)."""
    env = {**env, "GATEWAY_PORT": str(free_port()), "AUTH_PORT": str(free_port())}
    process = run_local(env, *args, prefix=prefix)
    try:
        line = ""
        while not line.startswith("Ready. Gateway: "):
            line = process.stdout.readline()
            assert line or process.poll() is None, "run-local stopped before it was ready"
        assert line.split()[2] == f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        client = Client(line.split()[2])
        assert client.login(*ADMIN).status_code == 200
        yield process, client
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        drop(env)


@contextlib.contextmanager
def consuming(consumer):
    """CONSUMER's loop in a thread of its own for the with block; stopped and joined after it."""
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
