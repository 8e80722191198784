"""The devcontainer for real, with the Dev Containers CLI (tools/devcontainer_cli.py: pinned, installed
with npm into .cache/ on first use): `devcontainer up` on a copy of the tree, then commands inside.

Two hosts: the user running the tests (root in CI: the CLI leaves the container user's uid alone), and
a non-root user whose uid is not 1000, in the docker group, owning its own copy (updateRemoteUserUID
changes the container user's uid to it)."""

import os
import pwd
import shlex
import shutil
from pathlib import Path

import pytest

from compose_engine import compose_command
from compose_project import copy_tree
from devcontainer_cli import CliMissing, Devcontainer, host_user, install_cli, owned_by


@pytest.fixture(scope="session")
def devcontainer_cli(container_images) -> Path:
    try:
        return install_cli()
    except CliMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="session")
def root_host(devcontainer_cli, tmp_path_factory):
    """The devcontainer made by the user running the tests (root in CI), up."""
    workspace = copy_tree(tmp_path_factory.mktemp("devcontainer-root") / "mp3converter", repository=True)
    compose = shlex.split(compose_command())
    container = Devcontainer(devcontainer_cli, compose, workspace, f"mp3converter-dev-test-{os.getpid()}")
    try:
        container.outcome = container.up()
        yield container
    finally:
        container.down()


@pytest.fixture(scope="session")
def other_uid_host(devcontainer_cli, root_host):
    """The devcontainer made by a non-root host user whose uid is not 1000, from a copy it owns, up.
    (After root_host, so that the two do not build and install at once.)"""
    if os.geteuid() != 0:
        pytest.skip("making a second host user needs root")
    user = host_user()
    base = Path(pwd.getpwnam(user).pw_dir) / f"devcontainer-test-{os.getpid()}"
    container = owned_by(user, base, f"mp3converter-dev-test-uid-{os.getpid()}")
    try:
        container.outcome = container.up()
        yield container
    finally:
        container.down()
        shutil.rmtree(base, ignore_errors=True)
