"""scripts/smoke as a user runs it against scripts/run-local: every step passes and is printed with its time;
a wrong account or a stack that is not there fails with the step and the reason, and a non-zero exit."""

import re
import subprocess

import pytest

from tests.servers import ADMIN, ROOT, ready_run_local

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STEPS = ("log in", "make a video", "upload", "follow its events", "download the MP3", "check its duration",
         "delete the job")


def smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts/smoke"), "--env-file", "/nonexistent/.env", *args],
                          capture_output=True, text=True, timeout=400)


@pytest.fixture(scope="module")
def run_local_url(stack_env):
    env = {**stack_env, "MYSQL_DB": stack_env["MYSQL_DB"] + "_smoke",
           "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".smoke", "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".smoke"}
    with ready_run_local(env) as (_process, client):
        yield client.base


def test_smoke_passes_against_run_local_step_by_step(run_local_url):
    result = smoke(run_local_url, "--email", ADMIN[0], "--password", ADMIN[1])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert [re.split(r"\s{2,}", line)[1] for line in lines] == list(STEPS)
    assert all(re.search(r"\d+\.\d\d s", line) for line in lines)
    assert "all passed" in result.stdout


def test_smoke_names_the_failing_step_and_why(run_local_url):
    wrong = smoke(run_local_url, "--email", ADMIN[0], "--password", "not-the-password")
    assert wrong.returncode == 1
    assert re.search(r"^FAIL\s+log in\s+.*HTTP 401: Wrong e-mail or password", wrong.stdout, re.M), wrong.stdout
    assert "failed at 'log in'" in wrong.stdout and "upload" not in wrong.stdout

    down = smoke("http://127.0.0.1:9", "--email", ADMIN[0], "--password", ADMIN[1])
    assert down.returncode == 1 and "not reachable" in down.stdout, down.stdout
