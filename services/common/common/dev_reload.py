"""gunicorn's reload (DEV_RELOAD, development only), four times quicker to notice a change.

gunicorn's polling reloader looks at every imported module's file once a second, so a saved file waited
half a second on average, and up to a second, before the worker restarted: a quarter of the gateway's
edit-to-live time (docs/benchmarks.md). QUICK_POLL looks four times a second, and only at the service's
own code: the installed libraries and the standard library (under the interpreter's prefixes) change only
with a new image, which compose watch and Tilt rebuild anyway. inotify is no option under gevent, which
takes epoll away from the select module.

It registers an engine in gunicorn's table of reloaders, the table the `reload_engine` setting is checked
against: not a documented extension point, so `register` first makes sure that what it relies on is still
there, and stops the service naming this module if it is not (as common.patches does for production's).
"""

import sys

from gunicorn import config, reloader

QUICK_POLL = "quick-poll"
INTERVAL_SECONDS = 0.25
LIBRARY_PREFIXES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})


class QuickReloader(reloader.Reloader):
    def __init__(self, extra_files=None, callback=None):
        super().__init__(extra_files=extra_files, interval=INTERVAL_SECONDS, callback=callback)

    def get_files(self):
        return [name for name in super().get_files() if not name.startswith(LIBRARY_PREFIXES)]


class ReloaderOutdated(SystemExit):
    """gunicorn no longer has what QuickReloader relies on (raised at start)."""


def problems() -> list[str]:
    """What registering the engine relies on in gunicorn, as it was when this was written (gunicorn 27)."""
    problems = []
    if not isinstance(getattr(reloader, "reloader_engines", None), dict):
        problems.append("gunicorn.reloader has no reloader_engines table")
    if "reloader_engines" not in config.validate_reload_engine.__code__.co_names:
        problems.append("the reload_engine setting is no longer checked against reloader_engines")
    parameters = reloader.ReloaderBase.__init__.__code__.co_varnames[:4]
    if parameters != ("self", "extra_files", "interval", "callback"):
        problems.append("ReloaderBase no longer takes extra_files, interval, callback")
    return problems


def register() -> str:
    """The engine's name for gunicorn's `reload_engine`, once it is registered."""
    found = problems()
    if found:
        raise ReloaderOutdated("An upgraded gunicorn no longer has what common/dev_reload.py relies on; pin the "
                               "version it was written for, or update it:\n" + "\n".join(f"  {p}" for p in found))
    reloader.reloader_engines[QUICK_POLL] = QuickReloader
    return QUICK_POLL
