"""Shared by the suites that run real containers (compose, watch, devcontainer): a Docker engine, and
every image compose.yaml and the Dockerfiles name, real or a labelled stand-in (scripts/standins).

The engine is the one that answers at DOCKER_HOST, or one started for the session and stopped after it
(docker_engine). Where none answers and none can be started, the suites are skipped with the reason;
with CI=true they fail instead, since CI installs what an engine needs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import docker_engine as engine
from compose_engine import compose_command

ROOT = Path(__file__).resolve().parents[1]


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the container suites to run: {reason}")
    pytest.skip(f"container suites not run: {reason}")


@pytest.fixture(scope="session")
def docker_engine():
    try:
        started = engine.start()
    except engine.EngineError as exc:
        unavailable(str(exc))
    yield engine.layout().host
    if started:
        engine.stop()


@pytest.fixture(scope="session")
def container_images(compose_available):
    """Every image the stack is built from or runs, present in the engine (stand-ins where needed)."""
    result = subprocess.run([sys.executable, "-m", "standins"], capture_output=True, text=True,
                            timeout=1800, cwd=ROOT)
    if result.returncode != 0:
        unavailable(f"scripts/standins failed: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="session")
def compose_available(docker_engine) -> str:
    """The Compose v2 command (for a shell command line); the suites cannot run without one."""
    try:
        return compose_command()
    except RuntimeError as error:
        unavailable(str(error))


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout
