"""Container health probes without curl, and the heartbeat file a consumer keeps for them.

    python -m common.healthcheck --url http://127.0.0.1:8080/healthz   # a 2xx answer
    python -m common.healthcheck --heartbeat [--max-age 60]            # alive: HEARTBEAT_FILE is fresh
    python -m common.healthcheck --connected [--max-age 60]            # ready: fresh, and connected

A consumer's loop keeps HEARTBEAT_FILE fresh as long as it runs, connected or waiting to reconnect,
and writes into it whether it is connected. So liveness holds through a broker outage (restarting a
consumer would not bring the broker back), while readiness says whether it is consuming.
"""

import argparse
import logging
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

CONNECTED = "connected"
RECONNECTING = "reconnecting"

log = logging.getLogger(__name__)


class Heartbeat:
    """The writer's side: `beat(connected)` at least every few seconds while the loop runs. A file that
    cannot be written is logged, never raised: the probe that reads it will say so."""

    def __init__(self, path: str):
        self._path = Path(path) if path else None
        self._written: str | None = None
        self._failing = False

    def beat(self, connected: bool) -> None:
        if self._path is None:
            return
        state = CONNECTED if connected else RECONNECTING
        try:
            self._write(state)
        except OSError as error:
            if not self._failing:
                log.warning("cannot write the heartbeat file", extra={"path": str(self._path), "error": repr(error)})
            self._failing = True
        else:
            self._failing = False

    def _write(self, state: str) -> None:
        if state == self._written:
            try:
                os.utime(self._path)
                return
            except FileNotFoundError:
                pass
        # Replaced whole, so that a probe never reads a half-written state; a partial file of its own, as
        # several consumers of one process (scripts/run-local) may share the heartbeat file.
        partial = self._path.with_name(f"{self._path.name}.{os.getpid()}-{threading.get_ident()}.partial")
        partial.write_text(state)
        os.replace(partial, self._path)
        self._written = state


def url_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a local URL we name)
            return 200 <= response.status < 300
    except OSError:
        return False


def heartbeat_age(path: str) -> float | None:
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return None


def heartbeat_state(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when the service is healthy.")
    probe = parser.add_mutually_exclusive_group(required=True)
    probe.add_argument("--url", help="healthy when a GET answers 2xx")
    probe.add_argument("--heartbeat", action="store_true", help="alive: HEARTBEAT_FILE is fresh")
    probe.add_argument("--connected", action="store_true", help="ready: fresh, and connected to the broker")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (heartbeat, connected)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (url)")
    args = parser.parse_args(argv)
    if args.url:
        return 0 if url_ok(args.url, args.timeout) else 1
    path = os.environ.get("HEARTBEAT_FILE", "/tmp/heartbeat")
    age = heartbeat_age(path)
    healthy = age is not None and age <= args.max_age
    if args.connected:
        healthy = healthy and heartbeat_state(path) == CONNECTED
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
