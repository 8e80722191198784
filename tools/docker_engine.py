"""A Docker engine for the container suites and CI: the one that answers at DOCKER_HOST (default
/var/run/docker.sock), or, when none does, one started here, which only its starter stops.

A started engine keeps Docker's iptables rules (image builds reach the package registries through them)
and no IPv6 rules; DOCKERD_EXTRA_ARGS adds options. On another socket than the default, its data,
state, pid file and log live in that socket's folder. A second engine beside a running one also needs a
bridge of its own and no iptables rules (`--bridge <its bridge> --iptables=false`); never `--bridge
none` there: dockerd then deletes the default bridge, docker0, which the running engine uses.

    python -m docker_engine start|stop|status   (scripts/docker-engine)
"""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = Path("/var/run/docker.sock")
STARTUP_SECONDS = 60


class EngineError(Exception):
    """No engine answers and none can be started here; the message says why."""


@dataclass(frozen=True)
class Layout:
    host: str
    socket: Path
    options: tuple[str, ...]  # where dockerd keeps its data and state (none: Debian's defaults)
    log: Path
    marker: Path  # exists while an engine started here runs: its pid


def layout() -> Layout:
    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if not host.startswith("unix://"):
        raise EngineError(f"DOCKER_HOST={host} is not a unix socket: start that engine yourself")
    socket = Path(host.removeprefix("unix://"))
    if socket.resolve() == DEFAULT_SOCKET.resolve():
        return Layout(host, socket, (), Path("/var/log/dockerd-mp3converter.log"),
                      Path("/var/run/dockerd-mp3converter.pid"))
    base = socket.parent
    options = ("--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
               "--pidfile", str(base / "docker.pid"))
    return Layout(host, socket, options, base / "dockerd.log", base / "dockerd-mp3converter.pid")


def problem(timeout: float = 20) -> str | None:
    """None when the engine answers `docker info`; otherwise why not."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` command on PATH"
    try:
        result = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {timeout:.0f} s"
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info` ({reason})"
    return None


def start() -> bool:
    """Make sure an engine answers. True if this call started it (then stop() stops it)."""
    if (reason := problem()) is None:
        return False
    where = layout()
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError(f"{reason}, and there is no dockerd to start (Debian: apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineError(f"{reason}, and starting dockerd needs root")
    where.socket.parent.mkdir(parents=True, exist_ok=True)
    command = [dockerd, "--host", where.host, *where.options, "--ip6tables=false",
               *shlex.split(os.environ.get("DOCKERD_EXTRA_ARGS", ""))]
    with where.log.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd exited with {process.returncode}; see {where.log}")
        if problem(timeout=5) is None:
            where.marker.write_text(f"{process.pid}\n")
            return True
        time.sleep(0.5)
    process.terminate()
    raise EngineError(f"dockerd did not answer within {STARTUP_SECONDS} s; see {where.log}")


def stop() -> bool:
    """Stop the engine that start() started; an engine started by anyone else is left alone."""
    marker = layout().marker
    if not marker.exists():
        return False
    pid = int(marker.read_text())
    if not _is_dockerd(pid):  # a marker left from before a reboot: its pid may be anyone's now
        marker.unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if _reaped(pid):
                break
            os.kill(pid, 0)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    marker.unlink(missing_ok=True)
    return True


def _is_dockerd(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return Path(command.decode(errors="replace")).name == "dockerd"


def _reaped(pid: int) -> bool:
    """Whether a child of this process has exited (it is started as one by the test suites)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/docker-engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "status"))
    action = parser.parse_args(argv).action
    try:
        host = layout().host
        if action == "start":
            print(f"Docker engine at {host}: " + ("started" if start() else "already answers; left as it is"))
        elif action == "stop":
            print(f"Docker engine at {host}: " + ("stopped" if stop() else "not started by us; left as it is"))
        else:
            reason = problem()
            print(f"Docker engine at {host}: {reason or 'answers'}")
            return 1 if reason else 0
    except EngineError as exc:
        print(f"scripts/docker-engine: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
