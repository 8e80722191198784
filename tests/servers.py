"""Shared by the suites that use real servers (integration, faults): MariaDB/MySQL and RabbitMQ on
127.0.0.1 (or where MYSQL_* / RABBITMQ_URL point), throwaway databases and queue names, the stack
as scripts/run-local wires it, and a client that speaks to the gateway as curl does. MongoDB is the
in-process mongomock unless MONGODB_URI names a server. With CI=true an unreachable server fails
the run instead of skipping."""

import contextlib
import os
import secrets
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pika
import pytest
import requests
import sqlalchemy as sa

from common.broker import connection_parameters, dead_letter_queue

ROOT = Path(__file__).resolve().parents[1]
RUN = secrets.token_hex(4)
ADMIN = ("admin@example.com", "admin-password-" + RUN)


def server_env() -> dict[str, str]:
    return {
        "MYSQL_HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "MYSQL_PORT": os.environ.get("MYSQL_PORT", "3306"),
        "MYSQL_USER": os.environ.get("MYSQL_USER", "root"),
        "MYSQL_PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "RABBITMQ_URL": os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        "MONGODB_URI": os.environ.get("MONGODB_URI", "memory"),
    }


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers():
    env = server_env()
    amqp = urllib.parse.urlparse(env["RABBITMQ_URL"])
    missing = [name for name, host, port in [
        ("MySQL", env["MYSQL_HOST"], int(env["MYSQL_PORT"])),
        ("RabbitMQ", amqp.hostname, amqp.port or 5672),
    ] if not reachable(host, port)]
    if missing:
        reason = f"{' and '.join(missing)} not reachable (see MYSQL_HOST/RABBITMQ_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the integration servers: {reason}")
        pytest.skip(reason)
    return env


def drop_database(env) -> None:
    url = sa.engine.URL.create("mysql+pymysql", username=env["MYSQL_USER"], password=env["MYSQL_PASSWORD"] or None,
                               host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]))
    engine = sa.create_engine(url)
    with engine.begin() as db:
        db.execute(sa.text(f"DROP DATABASE IF EXISTS `{env['MYSQL_DB']}`"))
    engine.dispose()


def delete_queues(env) -> None:
    connection = pika.BlockingConnection(connection_parameters(env["RABBITMQ_URL"]))
    channel = connection.channel()
    for queue in (env["VIDEO_QUEUE"], env["MP3_QUEUE"]):
        channel.queue_delete(queue)
        channel.queue_delete(dead_letter_queue(queue))
    connection.close()


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

    def jobs(self) -> requests.Response:
        return self.http.get(f"{self.base}/jobs", headers=self.headers(), timeout=30)

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
    name = f"{suffix}{RUN}"
    return {
        **servers,
        "MYSQL_DB": f"mp3test_{name}",
        "MONGODB_DB": f"mp3test_{name}",
        "VIDEO_QUEUE": f"test.video.{name}",
        "MP3_QUEUE": f"test.mp3.{name}",
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ADMIN_EMAIL": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "MAX_UPLOAD_MB": "64",
        "LOGIN_MAX_FAILURES": "5",
        "LOGIN_LOCKOUT_SECONDS": "60",
        "PUBLIC_URL": "http://localhost:8080",
        "HEARTBEAT_FILE": str(tmp_path_factory.mktemp("heartbeat") / "heartbeat"),
        "SMTP_HOST": "",
        "LOG_LEVEL": "INFO",
        **overrides,
    }


@contextlib.contextmanager
def running_stack(env: dict[str, str], converters: int = 1):
    """The services as scripts/run-local starts them, in this process; every setting is read at start."""
    from devstack import stack as devstack

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        running = devstack.start(auth_port=0, gateway_port=0, converters=converters)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        running.wait_ready(require_consumers=converters > 0)
        yield running
    finally:
        running.stop()
        drop_database(env)
        delete_queues(env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_local(env: dict[str, str], *args) -> subprocess.Popen:
    """scripts/run-local as a user starts it, without a .env: everything from `env`."""
    return subprocess.Popen([str(ROOT / "scripts/run-local"), "--env-file", "/nonexistent/.env", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def ready_run_local(env: dict[str, str], *args):
    """scripts/run-local on free ports, once it says it is ready: (process, logged-in admin client)."""
    env = {**env, "GATEWAY_PORT": str(free_port()), "AUTH_PORT": str(free_port())}
    process = run_local(env, *args)
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
        drop_database(env)
        delete_queues(env)
