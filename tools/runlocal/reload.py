"""scripts/run-local --reload: run-local in a child process, started anew whenever a Python file of the
services is saved.

The child is forked from this process, which has imported the libraries the services use (Flask,
SQLAlchemy, pymongo, OpenTelemetry ...) but none of the project's own code: a restart imports only the
code that can have changed, as gunicorn's reload does for its workers, instead of a whole interpreter's
worth of imports (the larger part of a restart: docs/benchmarks.md, edit-to-live). This process opens no
connection and starts no thread of its own before it forks, so the child starts clean. The child is stopped
as Ctrl-C stops it (SIGINT: requests finish, a consumer hands its message back) and killed after
STOP_SECONDS. A change to run-local's own wiring (tools/runlocal) needs a restart by hand.
"""

import importlib
import os
import signal
import sys
import time
from pathlib import Path

from watchfiles import PythonFilter, watch

ROOT = Path(__file__).resolve().parents[2]
WATCHED = ROOT / "services"
LIBRARIES = ("flask", "werkzeug.serving", "sqlalchemy", "pymysql", "pymongo", "gridfs", "mongomock", "requests",
             "pika", "pydantic_settings", "jwt", "limits", "opentelemetry.sdk.trace", "prometheus_client")
STOP_SECONDS = 5


def serve_reloading(argv: list[str]) -> int:
    for library in LIBRARIES:
        importlib.import_module(library)
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"Reloading on changes under {WATCHED.relative_to(ROOT)}", flush=True)
    child = _start(argv)
    try:
        # step: a save is acted on once the tree has been quiet for 50 ms.
        for changes in watch(WATCHED, watch_filter=PythonFilter(), step=50):
            print(f"Changed: {', '.join(sorted(path for _, path in changes))}; restarting", flush=True)
            _stop(child)
            child = _start(argv)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(child)
    return 0


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def _start(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from runlocal.__main__ import main  # the project's code is imported here, in the child, as it is now

        os._exit(main(argv))
    return pid


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


if __name__ == "__main__":
    sys.exit(serve_reloading(sys.argv[1:]))
