"""An opt-in debugger for development: with DEBUG=true a service process listens on DEBUG_PORT for a
debugger speaking the Debug Adapter Protocol (debugpy), such as VS Code's attach configurations in
.vscode/launch.json. docs/debugging.md shows it in each way of running the stack.

Never in production: debugpy is installed only in the images' dev stage and in the project's .venv
(services/common/requirements-debug.txt), and only compose.override.yaml, Tilt's `--debug` and
`scripts/run-local --debug` set DEBUG. Asked for where debugpy is not installed, the service stops at start
and says so: a debugger that silently never listens costs more time than a refusal.

Where to call it: in the process that runs the code. gunicorn forks its workers, so auth and the gateway
listen in their (single) worker, after gevent has patched it (common.service); debugpy then needs
GEVENT_SUPPORT to follow greenlets, set here before it is imported.
"""

import importlib.util
import logging
import os
import sys

from common.settings import DebuggerSettings, load

log = logging.getLogger(__name__)

# In a container: every interface of the container, which the engine publishes on the host's loopback only.
CONTAINER = "0.0.0.0"  # noqa: S104


def requested() -> DebuggerSettings | None:
    """The debugger's settings when DEBUG asks for one, else None. Stops the process when debugpy is
    missing: before gunicorn forks, since a worker that exits at start would be respawned for ever."""
    settings = load(DebuggerSettings)
    if not settings.debug:
        return None
    if importlib.util.find_spec("debugpy") is None:
        raise SystemExit("DEBUG is set, but debugpy is not installed here: the debugger is in the development "
                         "images (compose.override.yaml, Tilt) and in the .venv of scripts/run-local only")
    return settings


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def listen(port: int, host: str = CONTAINER) -> None:
    """Listen for a debugger on host:port, and go on running without waiting for one to attach."""
    if _gevent_patched():
        os.environ.setdefault("GEVENT_SUPPORT", "True")
    # Its warning about the standard library's frozen modules would be the one line of a log that is not JSON.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import debugpy

    debugpy.listen((host, port))
    log.info("debugger listening", extra={"address": f"{host}:{port}", "pid": os.getpid()})


def listen_if_requested(host: str = CONTAINER) -> None:
    settings = requested()  # first: it checks that debugpy is there
    if settings is not None:
        listen(settings.debug_port, host)
