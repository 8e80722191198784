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
  delay every reload by that much. The worker then exits as soon as no request is in progress, not at
  gevent's next once-a-second look.

gevent patches the standard library when the worker starts, before the app is built: the app's
modules (pymongo, pika, requests) must be imported by the app factory, not by the master, so that
their sockets and locks are the cooperative ones (see gateway/__main__.py); with DEV_RELOAD the master
patches itself first and imports them for its workers (common.service). CPU-bound work blocks a whole
worker here, which is why auth, which hashes passwords, keeps gthread.

The worker class, which overrides gunicorn's internals to do this, is common.patches.StreamingWorker.
"""

HEADER_SECONDS = 10
IDLE_SECONDS = 30
MAX_CONNECTIONS = 1000

def _stopping(worker) -> None:
    worker.stopping()


OPTIONS = {
    # The worker itself overrides gunicorn's internals, so it lives with the other patches, checked at start.
    "worker_class": "common.patches.StreamingWorker",
    # Called when the worker stops for a reload (and on SIGINT, SIGQUIT).
    "worker_int": _stopping,
    "worker_connections": MAX_CONNECTIONS,
    "keepalive": HEADER_SECONDS,
}
