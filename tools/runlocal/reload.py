"""scripts/run-local --reload: run-local in a child process, started anew whenever a Python file of the
services (or of run-local) is saved. The child is stopped as Ctrl-C stops it (SIGINT: requests finish, a
consumer hands its message back), then a new one imports the code as it is now."""

import shlex
import sys
from pathlib import Path

from watchfiles import PythonFilter, run_process

ROOT = Path(__file__).resolve().parents[2]
WATCHED = (ROOT / "services", ROOT / "tools/runlocal")


def serve_reloading(argv: list[str]) -> int:
    command = shlex.join([sys.executable, "-m", "runlocal", *argv])
    print(f"Reloading on changes under {', '.join(str(p.relative_to(ROOT)) for p in WATCHED)}", flush=True)
    # step: a save is acted on once the tree has been quiet for 50 ms.
    run_process(*WATCHED, target=command, target_type="command", watch_filter=PythonFilter(), step=50,
                callback=lambda changes: print(f"Changed: {', '.join(sorted(p for _, p in changes))}; restarting",
                                               flush=True))
    return 0
