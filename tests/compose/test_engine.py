"""scripts/docker-engine (docker_engine): an engine that answers is used and left alone; where none
answers, one is started, answers, and is stopped only by its starter. The second engine runs beside the
machine's on a socket, data root, exec root and bridge of its own, with no iptables rules, so that it
cannot disturb the first (the machine's docker0 is checked to be still there)."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

import docker_engine as engine

# The second engine's bridge: a small subnet that Docker's default address pools do not start with.
SECOND_BRIDGE_ADDRESS = "172.31.254.1/24"


def test_an_engine_that_answers_is_used_and_left_alone(docker_engine, monkeypatch, tmp_path):
    assert engine.start() is False
    # The answering engine may be one that scripts/docker-engine started for this run (CI does): its
    # marker says so, and stopping it here would pull it from under the rest of the run. Seen from
    # anyone who did not start it, there is no marker.
    monkeypatch.setattr(engine, "layout", lambda real=engine.layout: replace(real(), marker=tmp_path / "pid"))
    assert engine.stop() is False
    assert engine.problem() is None


def test_a_stale_marker_never_stops_another_process(monkeypatch, tmp_path):
    """A marker that outlived its engine (a reboot) names a pid that may be anyone's now."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        marker = tmp_path / "pid"
        marker.write_text(f"{bystander.pid}\n")
        monkeypatch.setattr(engine, "layout", lambda real=engine.layout: replace(real(), marker=marker))
        assert engine.stop() is False
        assert bystander.poll() is None, "the process the stale marker named was stopped"
        assert not marker.exists()
    finally:
        bystander.kill()
        bystander.wait()


@pytest.fixture
def second_engine(docker_engine, monkeypatch):
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("starting a second dockerd needs root and dockerd")
    folder = Path(tempfile.mkdtemp(prefix="engine-", dir="/tmp"))  # short: a socket path has 108 bytes
    bridge = f"mp3ceng{os.getpid() % 100000}"
    had_docker0 = link_exists("docker0")
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", SECOND_BRIDGE_ADDRESS, "dev", bridge], check=True)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/docker.sock")
    monkeypatch.setenv("DOCKERD_EXTRA_ARGS", f"--bridge={bridge} --iptables=false")
    try:
        yield folder
    finally:
        engine.stop()
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    assert link_exists("docker0") == had_docker0, "the second engine changed the machine's docker0"


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


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


def test_compose_is_chosen_for_the_user_who_runs_it(monkeypatch):
    """Docker's compose plugin may be installed for root alone (~/.docker/cli-plugins): its `docker compose`
    is not handed to another user, who gets a Compose binary instead."""
    if os.geteuid() != 0:
        pytest.skip("running a command as another user needs root")
    import compose_engine

    bin_dir = Path(tempfile.mkdtemp(prefix="root-only-compose-"))  # readable by every user, unlike tmp_path
    try:
        bin_dir.chmod(0o755)
        docker = bin_dir / "docker"
        docker.write_text('#!/bin/sh\n[ "$(id -u)" = 0 ] && [ "$1 $2" = "compose version" ]\n')
        docker.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setattr(compose_engine, "compose_binary", lambda: (Path("/opt/compose/docker-compose"), ""))
        assert compose_engine.compose_command() == "docker compose"
        assert compose_engine.compose_command("nobody") == "/opt/compose/docker-compose"
    finally:
        shutil.rmtree(bin_dir)
