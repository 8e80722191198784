"""scripts/run-local as a user runs it: it prints the gateway URL, serves, and stops cleanly."""

import os
import signal
import time

import pytest
import requests

from tests.servers import ready_run_local, run_local


def test_run_local_serves_until_sigterm_then_exits_0(stack_env):
    env = {**stack_env, "MYSQL_DB": stack_env["MYSQL_DB"] + "_rl", "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".rl",
           "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".rl"}
    with ready_run_local(env) as (process, client):
        assert requests.get(f"{client.base}/readyz", timeout=10).status_code == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.parametrize(("name", "value"), [("JWT_SECRET", ""), ("MYSQL_PORT", "not-a-port"),
                                             ("RABBITMQ_URL", "http://nope")])
def test_a_missing_or_malformed_variable_stops_it_with_the_name(stack_env, name, value):
    process = run_local({**stack_env, name: value})
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert name in output


def test_run_local_reload_serves_an_edit_without_a_restart_by_hand(stack_env, tmp_path):
    """--reload, on a copy of the tree first on PYTHONPATH: a saved change to the gateway is what answers next."""
    from compose_project import copy_tree

    tree = copy_tree(tmp_path / "tree")
    folders = [tree / "services" / part for part in ("common", "auth", "gateway", "converter", "notification")]
    env = {**stack_env, "MYSQL_DB": stack_env["MYSQL_DB"] + "_reload", "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".rel",
           "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".rel",
           "PYTHONPATH": os.pathsep.join(str(folder) for folder in [*folders, tree / "tools"])}
    with ready_run_local(env, "--reload") as (process, client):
        health = tree / "services/gateway/gateway/api/health.py"
        health.write_text(health.read_text().replace('jsonify(status="ok")', 'jsonify(status="ok", edited="live")'))
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{client.base}/healthz", timeout=2).json().get("edited") == "live":
                    break
            except (requests.RequestException, ValueError):
                pass
            assert time.monotonic() < deadline, "the edit was not served within 30 s"
            time.sleep(0.1)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
