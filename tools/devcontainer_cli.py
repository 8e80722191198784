"""The Dev Containers CLI (@devcontainers/cli, pinned here), installed with npm into .cache/ on first use,
and one checkout's devcontainer driven by it as a given host user: for the devcontainer suite and the
edit-to-live benchmark."""

import json
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

from compose_engine import compose_command
from compose_project import ROOT, copy_tree

CLI_VERSION = "0.89.0"
CLI_PREFIX = ROOT / ".cache" / "devcontainers-cli"
CLI = CLI_PREFIX / "node_modules" / ".bin" / "devcontainer"
HOST_USER = "mp3c-devhost"
HOST_UID = 2345


class Devcontainer:
    """One checkout and the devcontainer made from it, driven by the CLI as a given host user."""

    def __init__(self, cli: Path, compose: list[str], workspace: Path, project: str, user: str | None = None):
        self.cli, self.compose, self.workspace, self.project, self.user = cli, compose, workspace, project, user

    def run(self, subcommand: str, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
        """`devcontainer SUBCOMMAND [options] ARGS...` in the checkout, as the host user."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "COMPOSE_PROJECT_NAME": self.project}
        for name in ("DOCKER_HOST", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"):
            if name in os.environ:
                env[name] = os.environ[name]
        command = [str(self.cli), subcommand, "--workspace-folder", str(self.workspace)]
        if self.compose != ["docker", "compose"]:  # the CLI finds the plugin itself; a binary it is told
            command += ["--docker-compose-path", self.compose[0]]
        command += args
        if self.user:
            home = pwd.getpwnam(self.user).pw_dir
            runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
            command = [runuser, "-u", self.user, "--", "env", f"HOME={home}", f"USER={self.user}", *command]
        else:
            env["HOME"] = os.environ.get("HOME", "/root")
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=self.workspace)

    def up(self) -> dict:
        result = self.run("up")
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        outcome = json.loads(lines[-1]) if lines else {}
        assert result.returncode == 0 and outcome.get("outcome") == "success", (
            f"devcontainer up failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
        return outcome

    def exec(self, *command: str, timeout: float = 1500) -> subprocess.CompletedProcess:
        return self.run("exec", *command, timeout=timeout)

    def down(self) -> None:
        files = ["-f", str(self.workspace / "compose.yaml"), "-f",
                 str(self.workspace / ".devcontainer" / "compose.devcontainer.yaml")]
        subprocess.run([*self.compose, *files, "-p", self.project, "--project-directory", str(self.workspace),
                        "down", "--volumes", "--remove-orphans", "--timeout", "10"],
                       capture_output=True, timeout=300, cwd=self.workspace)


class CliMissing(Exception):
    """npm, which installs the CLI, is not there."""


def install_cli() -> Path:
    """The pinned CLI, installed into .cache/ when it is not there yet (or another version is)."""
    installed = CLI_PREFIX / "node_modules" / "@devcontainers" / "cli" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != CLI_VERSION:
        if shutil.which("npm") is None:
            raise CliMissing("npm is needed to install @devcontainers/cli (Debian: apt-get install npm)")
        subprocess.run(["npm", "install", "--prefix", str(CLI_PREFIX), "--no-audit", "--no-fund",
                        f"@devcontainers/cli@{CLI_VERSION}"], check=True, capture_output=True, timeout=600)
    return CLI


def host_user() -> str:
    """A non-root host user with a uid other than 1000, allowed to use Docker (made when missing; as root)."""
    try:
        pwd.getpwnam(HOST_USER)
    except KeyError:
        subprocess.run(["useradd", "--uid", str(HOST_UID), "--create-home", "--groups", "docker", HOST_USER],
                       check=True, capture_output=True)
    subprocess.run(["usermod", "--append", "--groups", "docker", HOST_USER], check=True, capture_output=True)
    return HOST_USER


def owned_by(user: str, base: Path, project: str) -> Devcontainer:
    """A copy of the tree under `base` (removed first) that `user` owns, with its own copies of the CLI and
    of compose (the checkout here may sit where that user cannot read, and root's compose plugin in
    ~/.docker/cli-plugins is not the user's); its devcontainer, driven as that user."""
    shutil.rmtree(base, ignore_errors=True)
    workspace = copy_tree(base / "mp3converter", repository=True)
    shutil.copytree(CLI_PREFIX, base / "cli", symlinks=True)
    compose = shlex.split(compose_command(user))
    if compose != ["docker", "compose"]:
        compose = [str(shutil.copy2(compose[0], base / "docker-compose"))]
    subprocess.run(["chown", "-R", f"{user}:{user}", str(base)], check=True)
    cli = base / "cli" / "node_modules" / ".bin" / "devcontainer"
    return Devcontainer(cli, compose, workspace, project, user=user)
