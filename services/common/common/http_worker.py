"""The gunicorn worker for a public service that holds responses open and faces untrusted clients.

A thread per connection (gthread) is the wrong shape for the gateway: an event stream is a
response that lasts minutes, and a client that sends its request a byte at a time holds its thread
just as long, so a handful of either starves /healthz. Here each connection is a gevent greenlet
(a few KiB, no thread), and the bounds a buffering proxy would give are enforced in the worker:

- the whole request head, and the draining of an unread body before the next request on a
  kept-alive connection, must arrive within HEADER_SECONDS (gunicorn's gevent worker applies
  `keepalive` as one deadline around reading the next request);
- a body read or a response write that makes no progress for IDLE_SECONDS ends the connection
  (a socket timeout), so a stalled upload or a reader that stopped reading frees its greenlet,
  while an upload that keeps moving streams for as long as it takes;
- at most MAX_CONNECTIONS connections per worker process;
- on SIGTERM, and when the worker stops for a reload (DEV_RELOAD), common.shutdown.requested is set,
  so that open event streams end at once (their clients resume elsewhere with Last-Event-ID) rather
  than hold the shutdown for graceful_timeout, and kept-alive connections waiting for their next
  request are closed, rather than hold it for HEADER_SECONDS: a browser tab left open would otherwise
  delay every reload by that much.

gevent patches the standard library when the worker starts, before the app is built: the app's
modules (pymongo, pika, requests) must be imported by the app factory, not by the master, so that
their sockets and locks are the cooperative ones (see gateway/__main__.py). CPU-bound work blocks a
whole worker here, which is why auth, which hashes passwords, keeps gthread.
"""

import socket
from contextlib import suppress

from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from common import shutdown

HEADER_SECONDS = 10
IDLE_SECONDS = 30
MAX_CONNECTIONS = 1000


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
        """Event streams end; connections between requests close (their reads end at once)."""
        shutdown.requested.set()
        for connection, busy in list(self._serving.items()):
            if not busy:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_exit(self, sig, frame):
        self.stopping()
        super().handle_exit(sig, frame)


def _stopping(worker) -> None:
    worker.stopping()


OPTIONS = {
    "worker_class": f"{__name__}.StreamingWorker",
    # Called when the worker stops for a reload (and on SIGINT, SIGQUIT).
    "worker_int": _stopping,
    "worker_connections": MAX_CONNECTIONS,
    "keepalive": HEADER_SECONDS,
}
