"""pytest-docker wiring for the compose suite: the repository's compose.yaml, as `scripts/up` runs it.

- A temporary .env from scripts/init-env, with free host ports (a stack already running on 8080,
  15672 or 8025 does not get in the way) and the notification e-mails sent to Mailpit (profile `mail`).
- Compose sees only that .env: every variable it names is removed from the compose command's
  environment, which compose would otherwise prefer to the file.
- A project of its own (`mp3converter-test-<pid>`), removed with its volumes at the end. When `up`
  fails, the services' logs are in the error and the project is removed all the same.

Before `up`, tests/containers.py makes sure an engine answers and every image is there (stand-ins
where none can be pulled); where neither can be had, the suite is skipped with the reason (with
CI=true it fails).
"""

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from compose_engine import compose_command
from compose_project import compose_sees_only, read_env, write_stack_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack_env_file(tmp_path_factory) -> Path:
    return write_stack_env(tmp_path_factory.mktemp("compose-env") / ".env")


@pytest.fixture(scope="session")
def stack_env(stack_env_file) -> dict:
    return read_env(stack_env_file)


@pytest.fixture(scope="session")
def docker_compose_command(stack_env_file, stack_env) -> str:
    unset = shlex.join(compose_sees_only(stack_env))
    return f"{unset} {compose_command()} --env-file {shlex.quote(str(stack_env_file))} --profile mail"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "compose.yaml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"mp3converter-test-{os.getpid()}"


@pytest.fixture(scope="session")
def compose_prefix(docker_compose_command, docker_compose_file, docker_compose_project_name) -> str:
    """The shell command pytest-docker runs, up to the subcommand."""
    return f"{docker_compose_command} -f {shlex.quote(docker_compose_file)} -p {docker_compose_project_name}"


@pytest.fixture(scope="session")
def stack_compose(compose_prefix):
    """Run `docker compose SUBCOMMAND` on the test project; returns its standard output."""

    def run(subcommand: str) -> str:
        command = shlex.split(compose_prefix) + shlex.split(subcommand)
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"compose {subcommand}: {result.stderr}"
        return result.stdout

    return run


@pytest.fixture(scope="session")
def docker_setup(container_images, compose_prefix) -> list:
    base = compose_prefix
    # pytest-docker does not clean up after a failed setup: show why it failed, then remove the project.
    return [
        "up --build --wait --wait-timeout 600"
        f" || {{ {base} ps -a; {base} logs --no-color --tail=200;"
        f" {base} down --volumes --remove-orphans --timeout 10; exit 1; }}"
    ]


@pytest.fixture(scope="session")
def docker_cleanup() -> list:
    return ["down --volumes --remove-orphans --timeout 30"]


@pytest.fixture(scope="session")
def stack_config(stack_compose) -> dict:
    """`docker compose config` of the test project: the images, healthchecks and variables it runs with."""
    return json.loads(stack_compose("config --format json"))


@pytest.fixture(scope="session")
def container_of(stack_compose):
    """The container id of a service of the running test project."""

    def find(service: str) -> str:
        return stack_compose(f"ps --all --quiet {service}").strip()

    return find
