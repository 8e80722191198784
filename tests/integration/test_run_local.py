"""scripts/run-local as a user runs it: it prints the gateway URL, serves, and stops cleanly."""

import signal

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
