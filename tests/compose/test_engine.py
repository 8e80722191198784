"""scripts/docker-engine (devstack.engine): an engine that answers is used and left alone; where none
answers, one is started, answers, and is stopped only by its starter. The second engine runs beside the
machine's on a socket, data root and exec root of its own, with no bridge and no iptables rules, so
that it cannot disturb the first."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from devstack import engine

pytestmark = pytest.mark.compose


def test_an_engine_that_answers_is_used_and_left_alone(docker_engine):
    assert engine.start() is False
    assert engine.stop() is False
    assert engine.problem() is None


@pytest.fixture
def second_engine(docker_engine, monkeypatch):
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("starting a second dockerd needs root and dockerd")
    folder = Path(tempfile.mkdtemp(prefix="engine-", dir="/tmp"))  # short: a socket path has 108 bytes
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/docker.sock")
    monkeypatch.setenv("DOCKERD_EXTRA_ARGS", "--bridge=none --iptables=false")
    yield folder
    engine.stop()
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_where_none_answers_one_is_started_and_stopped_by_its_starter(second_engine):
    assert "no Docker engine answers" in engine.problem()
    assert engine.stop() is False, "nothing was started yet"

    assert engine.start() is True
    assert engine.problem() is None
    info = subprocess.run(["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert info == str(second_engine / "data")
    assert engine.start() is False, "a second start uses the running engine"

    assert engine.stop() is True
    assert "no Docker engine answers" in engine.problem()
    assert engine.stop() is False


def test_the_command_line_says_what_it_did(second_engine):
    run = [str(Path(__file__).resolve().parents[2] / "scripts" / "docker-engine")]
    started = subprocess.run([*run, "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0 and "started" in started.stdout, started.stderr
    status = subprocess.run([*run, "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "answers" in status.stdout
    stopped = subprocess.run([*run, "stop"], capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    status = subprocess.run([*run, "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 1
