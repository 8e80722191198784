"""Every use of a library's private parts that production needs, in one module, each checked at start.

A patch relies on code its library may change in any release. So each has a check of exactly what it
relies on, run when the service starts (common.service) and by the unit tests: an upgrade that moves it
stops the service at once with a message naming the patch, instead of changing its behaviour quietly.
Where a public API can do the job it is used instead (GridFS uploads: common.storage writes the chunks
through the collection API rather than resizing pymongo's private upload buffer).

- StreamingWorker: gunicorn's gevent worker with per-connection socket timeouts, connections that end
  when the worker stops (those between requests at once), the shutdown flag set on SIGTERM and on a
  reload, and an exit as soon as no request is in progress (common/http_worker.py says why). It
  overrides methods gunicorn does not document as extension points.
"""

import socket
import time
from contextlib import suppress

import gevent
from gunicorn.workers import base, base_async
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from common import shutdown
from common.http_worker import IDLE_SECONDS


class PatchOutdated(SystemExit):
    """A library no longer has what a patch here relies on (raised at start)."""


class StreamingWorker(GeventWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._serving: dict[socket.socket, bool] = {}  # each open connection: is a request in progress?

    def handle(self, listener, client, addr):
        # GeventWorker.handle would make the socket blocking without a timeout.
        client.settimeout(IDLE_SECONDS)
        self._serving[client] = False
        try:
            AsyncWorker.handle(self, listener, client, addr)
        finally:
            self._serving.pop(client, None)

    def handle_request(self, listener_name, req, sock, addr):
        self._serving[sock] = True
        try:
            keep_alive = super().handle_request(listener_name, req, sock, addr)
        finally:
            if sock in self._serving:
                self._serving[sock] = False
        if not self.alive:  # stopping: no next request on this connection, so the worker exits now
            raise StopIteration
        return keep_alive

    def stopping(self) -> None:
        """Event streams end; connections between requests close (their reads end at once); the worker
        exits once no request is in progress. On SIGTERM, and from the worker_int hook
        (common.http_worker.OPTIONS) when a reload stops the worker."""
        shutdown.requested.set()
        for connection, busy in list(self._serving.items()):
            if not busy:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        gevent.spawn(self._exit_once_idle)

    def _exit_once_idle(self) -> None:
        # gevent's run() looks at `alive` once a second, and a reload's sys.exit ends only the reloader's
        # thread: a second of every edit-to-live. SystemExit in the worker's main greenlet (the hub's
        # parent, where gevent itself sends a greenlet's SystemExit) is how gunicorn ends it on SIGQUIT.
        # Past graceful_timeout, run()'s own loop ends the requests left.
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(self._serving.values()):
            if time.monotonic() >= deadline:
                return
            gevent.sleep(0.05)
        hub = gevent.get_hub()
        hub.loop.run_callback(hub.parent.throw, SystemExit(0))

    def handle_exit(self, sig, frame):
        self.stopping()
        super().handle_exit(sig, frame)


def _parameters(function) -> tuple[str, ...]:
    code = function.__code__
    return code.co_varnames[:code.co_argcount]


def _streaming_worker_problems() -> list[str]:
    """What StreamingWorker relies on in gunicorn, as it was when the patch was written (gunicorn 27)."""
    problems = []
    if AsyncWorker not in GeventWorker.__mro__:
        problems.append("GeventWorker is no longer an AsyncWorker")
    # It replaces GeventWorker.handle, which must do nothing but make the socket blocking and go on.
    if set(GeventWorker.handle.__code__.co_names) != {"setblocking", "super", "handle"}:
        problems.append("GeventWorker.handle does more than make the socket blocking")
    for owner, name, parameters in ((AsyncWorker, "handle", ("self", "listener", "client", "addr")),
                                    (GeventWorker, "handle_request", ("self", "listener_name", "req", "sock", "addr")),
                                    (GeventWorker, "handle_exit", ("self", "sig", "frame"))):
        method = getattr(owner, name, None)
        if method is None or _parameters(method) != parameters:
            problems.append(f"{owner.__name__}.{name} no longer takes {', '.join(parameters)}")
    # Raising StopIteration from handle_request ends the connection; `alive` turns false on SIGTERM.
    if "StopIteration" not in base_async.AsyncWorker.handle.__code__.co_names:
        problems.append("AsyncWorker.handle no longer ends a connection on StopIteration")
    if "alive" not in base.Worker.handle_exit.__code__.co_names:
        problems.append("Worker.handle_exit no longer clears `alive`")
    # A worker stops at once with SystemExit raised where it runs (its quick shutdown does so).
    if "exit" not in base.Worker.handle_quit.__code__.co_names:
        problems.append("Worker.handle_quit no longer stops the worker with sys.exit")
    # A reload stops the worker through the worker_int hook, which closes its idle connections.
    reloads = [code for code in base.Worker.init_process.__code__.co_consts
               if getattr(code, "co_name", None) == "changed"]
    if not reloads or "worker_int" not in reloads[0].co_names:
        problems.append("a reload no longer calls the worker_int hook")
    return problems


CHECKS = {"StreamingWorker (gunicorn's gevent worker)": _streaming_worker_problems}


def check() -> None:
    """Stop the process, naming each patch whose library changed under it (see the module's doc)."""
    found = [f"  {patch}: {problem}" for patch, problems_of in CHECKS.items() for problem in problems_of()]
    if found:
        raise PatchOutdated("An upgraded library no longer has what common/patches.py relies on; pin the "
                            "version it was written for, or update the patch:\n" + "\n".join(found))
