"""Probes that tell the truth, on real processes: a service that cannot build its app exits at once and
non-zero (instead of a gunicorn whose workers crash-loop behind an open port), a probe never hangs, and a
consumer stays alive while it reconnects to a broker that is down, but is ready only while connected.

The broker outage is a TCP proxy in front of the shared RabbitMQ that is cut, or a port where nothing
listens: RabbitMQ itself is never stopped here.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.consumer import MAX_BACKOFF_SECONDS
from runlocal.throwaway import drop
from tests.faults.conftest import TCPProxy, stop_process, wait_until
from tests.servers import free_port, served_mongodb_uri

ROOT = Path(__file__).resolve().parents[2]
# Longer than the longest wait between two reconnection attempts: liveness must hold through it.
OUTAGE_SECONDS = MAX_BACKOFF_SECONDS + 3
# What a probe allows in these tests: far below the 60 s of the manifests, so that a pause shows.
MAX_AGE = "5"


def probe(*args: str, env: dict) -> int:
    """`python -m common.healthcheck ARGS`, as the compose healthcheck and the Kubernetes probes run it."""
    return subprocess.run([sys.executable, "-m", "common.healthcheck", *args], env={**os.environ, **env},
                          capture_output=True, timeout=30).returncode


def start(service: str, env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", service], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)


def closed_port() -> int:
    return free_port()  # bound a moment ago, then released: nothing listens there


# ---------------------------------------------------------------- an app that cannot start


@pytest.fixture
def image_without_mongomock(tmp_path) -> str:
    """A PYTHONPATH on which `import mongomock` fails, as it does in the images (mongomock is dev-only)."""
    package = tmp_path / "no-mongomock" / "mongomock"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise ImportError("mongomock is not installed in this image")\n')
    return str(package.parent)


def http_service_env(tmp_path, **overrides) -> dict:
    return {
        "GATEWAY_PORT": str(free_port()), "AUTH_PORT": str(free_port()), "HTTP_WORKERS": "2",
        "AUTH_SVC_ADDRESS": f"http://127.0.0.1:{closed_port()}", "MONGODB_URI": "memory",
        "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F",
        "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(closed_port()), "MYSQL_USER": "nobody", "MYSQL_DB": "nothing",
        "JWT_SECRET": "a-probe-test-secret-of-32-chars!", "HOME": str(tmp_path), **overrides,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("service", "cause", "setting"),
    [
        # The case seen in an image: a SystemExit in every worker, which gunicorn used to respawn forever
        # (`memory` is run-local's in-process MongoDB, which no image has).
        ("gateway", "MONGODB_URI: must begin with mongodb://", {"MONGODB_URI": "memory"}),
        ("gateway", "ServerSelectionTimeoutError", {"MONGODB_URI": f"mongodb://127.0.0.1:{closed_port()}/"}),
        # auth touches MySQL at start only to create the first admin.
        ("auth", "Can't connect to MySQL server", {"ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "x" * 16}),
    ],
    ids=["gateway-bad-mongodb-uri", "gateway-no-mongodb", "auth-no-mysql"],
)
def test_an_http_service_that_cannot_build_its_app_exits_at_once_and_non_zero(
    service, cause, setting, tmp_path, image_without_mongomock
):
    env = http_service_env(tmp_path, PYTHONPATH=os.pathsep.join([image_without_mongomock, os.environ.get(
        "PYTHONPATH", "")]), **setting)
    log = tmp_path / "service.log"
    process = start(service, env, log)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        stop_process(process)
        output = log.read_text()
        pytest.fail(f"{service} still runs after 30 s ({output.count('Booting worker')} workers booted):\n"
                    f"{output[-2000:]}")
    output = log.read_text()
    assert code != 0, output
    assert cause in output, output
    # Each worker booted once: no respawn loop before the server gave up.
    assert output.count("Booting worker") <= 2, output
    assert "Control server error" not in output and "Control socket" not in output, output


def test_an_http_probe_gives_up_on_a_server_that_never_answers():
    """A port that accepts connections but never answers (gunicorn's listening socket with no worker to
    serve it) fails the probe within its timeout: the probe itself never hangs."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        port = server.getsockname()[1]
        started = time.monotonic()
        code = probe("--url", f"http://127.0.0.1:{port}/healthz", "--timeout", "1", env={})
        took = time.monotonic() - started
    assert code == 1
    assert took < 10, f"the probe took {took:.1f} s"


# ---------------------------------------------------------------- consumers: alive vs ready


def consumer_env(fault_env, tmp_path, broker_port: int) -> dict:
    """The consumer's environment, its broker on 127.0.0.1:`broker_port` with the same login."""
    amqp = urlparse(fault_env["RABBITMQ_URL"])
    url = amqp._replace(netloc=f"{amqp.username}:{amqp.password}@127.0.0.1:{broker_port}").geturl()
    return {**fault_env, "RABBITMQ_URL": url, "HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
            "MONGODB_URI": served_mongodb_uri()}


def alive_throughout(seconds: float, env: dict, process: subprocess.Popen) -> None:
    """Liveness holds at every look during `seconds`, and readiness never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the consumer exited"
        assert probe("--heartbeat", "--max-age", MAX_AGE, env=env) == 0, "liveness failed while reconnecting"
        assert probe("--connected", "--max-age", MAX_AGE, env=env) == 1, "ready without a broker"
        time.sleep(1)


@pytest.mark.parametrize("service", ["converter", "notification"])
def test_a_consumer_started_while_the_broker_is_down_is_alive_but_not_ready(service, fault_env, tmp_path):
    env = consumer_env(fault_env, tmp_path, closed_port())
    process = start(service, env, tmp_path / "consumer.log")
    try:
        wait_until(lambda: probe("--heartbeat", "--max-age", MAX_AGE, env=env) == 0, 30, "a first heartbeat")
        alive_throughout(OUTAGE_SECONDS, env, process)
    finally:
        stop_process(process)
    assert "RabbitMQ connection lost; reconnecting" in (tmp_path / "consumer.log").read_text()


def test_a_consumer_stays_alive_through_a_broker_outage_and_is_ready_only_while_connected(fault_env, tmp_path):
    amqp = urlparse(fault_env["RABBITMQ_URL"])
    proxy = TCPProxy(amqp.hostname, amqp.port or 5672)
    env = consumer_env(fault_env, tmp_path, proxy.port)
    process = start("notification", env, tmp_path / "consumer.log")
    try:
        wait_until(lambda: probe("--connected", "--max-age", MAX_AGE, env=env) == 0, 60, "the consumer to connect")

        proxy.cut()
        wait_until(lambda: probe("--connected", "--max-age", MAX_AGE, env=env) == 1, 30, "readiness to fail")
        alive_throughout(OUTAGE_SECONDS, env, process)

        TCPProxy(amqp.hostname, amqp.port or 5672, port=proxy.port)  # the broker is back
        wait_until(lambda: probe("--connected", "--max-age", MAX_AGE, env=env) == 0,
                   MAX_BACKOFF_SECONDS + 30, "readiness to come back")
        assert process.poll() is None
    finally:
        stop_process(process)
        drop(fault_env)
    assert process.returncode == 0, (tmp_path / "consumer.log").read_text()[-2000:]
