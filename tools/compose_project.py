"""A throwaway compose project, as the compose, watch and devcontainer suites and the edit-to-live benchmark
run one: a copy of the tree, a .env of its own with free host ports, compose seeing only that .env, and a
wait until the gateway is ready."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# Compose's own settings would change which files, profiles or project it uses.
COMPOSE_SETTINGS = ("COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES")


def compose_sees_only(env_values: dict) -> list[str]:
    """`env -u ...`: compose prefers the environment to the .env file, so every variable the file sets
    (and compose's own settings) is removed from the compose command's environment."""
    return ["env", *[arg for name in sorted({*env_values, *COMPOSE_SETTINGS}) for arg in ("-u", name)]]


def copy_tree(target: Path, repository: bool = False) -> Path:
    """The project's files as git sees them (tracked and new, not ignored): no .venv, no .env; with
    `repository`, in a git repository of its own, as a checkout is."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    if repository:
        subprocess.run(["git", "init", "--quiet"], cwd=target, check=True)
        subprocess.run(["git", "add", "--all"], cwd=target, check=True)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_env(path: Path) -> dict:
    return {m.group(1): m.group(2) for line in path.read_text().splitlines() if (m := ASSIGNMENT.match(line))}


def write_stack_env(path: Path, **overrides: str) -> Path:
    """A .env from scripts/init-env with free host ports (a stack already running on 8080, 15672 or 8025
    does not get in the way) and the notification e-mails sent to Mailpit (profile `mail`)."""
    subprocess.run([sys.executable, str(ROOT / "scripts/init-env"), "--output", str(path)], check=True,
                   capture_output=True)
    values = read_env(path)
    values.update({
        "GATEWAY_PORT": str(free_port()), "RABBITMQ_UI_PORT": str(free_port()), "MAILPIT_UI_PORT": str(free_port()),
        "SMTP_HOST": "mailpit", "SMTP_PORT": "1025", "SMTP_USER": "", "SMTP_PASSWORD": "", "SMTP_STARTTLS": "false",
    }, **overrides)  # fmt: skip
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def readiness(url: str) -> tuple[int, dict]:
    try:
        response = requests.get(f"{url}/readyz", timeout=10)
        return response.status_code, response.json()
    except (requests.RequestException, ValueError) as exc:
        return 0, {"error": str(exc)}


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = readiness(url)
        if status == 200:
            return
        time.sleep(1)
    raise AssertionError(f"{url}/readyz not ready after {timeout} s: {status} {body}")


class SyncUserMissing(Exception):
    """Live sync cannot work here, and this process may not fix it (the text says what to do)."""


def ensure_sync_user(root: Path) -> str:
    """The images' uid, given a host user where the engine needs one for compose watch to sync.

    Docker engines before 28 (moby/moby#34143) look the container's user up in the host's passwd
    database when compose watch copies files in as that user, and fail without an entry ("getent unable
    to find entry"). On such a host, as root, the uid gets a system user of its own (docs/compose.md)."""
    uid = re.search(r"^USER (\d+)", (root / "services/Dockerfile").read_text(), re.MULTILINE)[1]
    if subprocess.run(["getent", "passwd", uid], capture_output=True).returncode == 0:
        return uid
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if int(version.split(".")[0]) >= 28:
        return uid
    if os.geteuid() != 0:
        raise SyncUserMissing(f"Docker {version} syncs only into a container whose uid {uid} has a host user; "
                              "add one (docs/compose.md)")
    if subprocess.run(["getent", "group", uid], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", "--gid", uid, "mp3converter-app"], check=True)
    subprocess.run(["useradd", "--system", "--uid", uid, "--gid", uid, "--no-create-home", "--shell",
                    "/usr/sbin/nologin", "mp3converter-app"], check=True)
    return uid
