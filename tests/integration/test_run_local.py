"""scripts/run-local as a user runs it: it prints the gateway URL, serves, and stops cleanly."""

import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests.servers import ROOT

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_local(env, *args):
    return subprocess.Popen([str(ROOT / "scripts/run-local"), "--env-file", "/nonexistent/.env", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_run_local_serves_until_sigterm_then_exits_0(stack_env):
    env = {**stack_env, "GATEWAY_PORT": str(free_port()), "AUTH_PORT": str(free_port()),
           "MYSQL_DB": stack_env["MYSQL_DB"] + "_rl", "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".rl",
           "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".rl"}
    process = run_local(env)
    try:
        ready = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if line.startswith("Ready. Gateway: "):
                ready = line.split()[2]
                break
        assert ready == f"http://127.0.0.1:{env['GATEWAY_PORT']}", "run-local never said it was ready"
        assert requests.get(f"{ready}/readyz", timeout=10).status_code == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _cleanup(env)


def _cleanup(env):
    from tests.servers import delete_queues, drop_database

    drop_database(env)
    delete_queues(env)


@pytest.mark.parametrize(("name", "value"), [("JWT_SECRET", ""), ("MYSQL_PORT", "not-a-port"),
                                             ("RABBITMQ_URL", "http://nope")])
def test_a_missing_or_malformed_variable_stops_it_with_the_name(stack_env, name, value):
    process = run_local({**stack_env, name: value})
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert name in output
