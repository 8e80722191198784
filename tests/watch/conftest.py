"""`docker compose up --watch`, exactly as typed, in a throwaway copy of the tree: compose merges
compose.override.yaml by itself. The tests edit files in the copy and watch the running stack follow. A
project of its own (COMPOSE_PROJECT_NAME, not a flag), removed with its volumes.

The stack runs with DEBUG=true (an environment variable, as a developer sets it): the same stack serves
the debugger's tests (test_debugger.py), since starting one takes minutes on two cores."""

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from compose_engine import compose_command
from compose_project import (
    SyncUserMissing,
    compose_sees_only,
    copy_tree,
    ensure_sync_user,
    free_port,
    read_env,
    wait_ready,
    write_stack_env,
)
from tests.containers import unavailable
from tests.servers import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("watch") / "mp3converter")


DEBUG_PORTS = ("GATEWAY_DEBUG_PORT", "AUTH_DEBUG_PORT", "CONVERTER_DEBUG_PORT", "NOTIFICATION_DEBUG_PORT")


@pytest.fixture(scope="session")
def watch_env(tree) -> dict:
    # .env as scripts/init-env writes it (compose.override.yaml makes a restarted consumer hand its message
    # back at once, which is what the converter's test is about); the debuggers' host ports are free ones,
    # as the gateway's is.
    return read_env(write_stack_env(tree / ".env", **{name: str(free_port()) for name in DEBUG_PORTS}))


@pytest.fixture(scope="session")
def watch_compose(tree, watch_env, container_images):
    """Run `docker compose SUBCOMMAND` on the watch project, in the tree, with no -f, --project-directory
    or -p: what a developer types there. Returns its standard output."""
    prefix = [*compose_sees_only(watch_env), f"COMPOSE_PROJECT_NAME=mp3converter-watch-{os.getpid()}",
              "DEBUG=true", *shlex.split(compose_command())]

    def run(subcommand: str, timeout: float = 600) -> str:
        result = subprocess.run([*prefix, *shlex.split(subcommand)], capture_output=True, text=True,
                                timeout=timeout, cwd=tree)
        assert result.returncode == 0, f"compose {subcommand}: {result.stderr}"
        return result.stdout

    run.prefix = prefix
    return run


@pytest.fixture(scope="session")
def sync_user():
    try:
        return ensure_sync_user(ROOT)
    except SyncUserMissing as missing:
        unavailable(str(missing))


@pytest.fixture(scope="session")
def watching(tree, watch_env, watch_compose, sync_user, tmp_path_factory):
    """The stack under `up --watch`, ready; its output in a log file (yields the gateway URL)."""
    log_path = tmp_path_factory.mktemp("watch-log") / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen([*watch_compose.prefix, "up", "--watch"], cwd=tree, stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{watch_env['GATEWAY_PORT']}"
    try:
        wait_ready(url, timeout=900)
        time.sleep(2)  # the watcher starts once the services run
        yield url
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- compose up --watch:\n{log_path.read_text()[-5000:]}") from None
    finally:
        up.terminate()
        try:
            up.wait(timeout=120)
        except subprocess.TimeoutExpired:
            up.kill()
        watch_compose("down --volumes --remove-orphans --timeout 30")


@pytest.fixture(scope="session")
def watch_client(watching, watch_env) -> Client:
    client = Client(watching)
    assert client.login(watch_env["ADMIN_EMAIL"], watch_env["ADMIN_PASSWORD"]).status_code == 200
    return client
