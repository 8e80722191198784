"""A job's life as Server-Sent Events: one `progress` event per observed change of status or
percent, then one `done` or `failed`, after which the stream ends.

Each event's id grows with the job: attempt x 1000 + 200 x stage + percent (stage 0 queued,
1 converting, 4 final). Job transitions only ever move forward in (attempt, stage, percent), a retry
after a crash included, so the ids do too, and `Last-Event-ID` resumes a stream with nothing
repeated: an event is sent only when its id is above the last one the client saw.

The job is read by polling (MongoDB change streams need a replica set, and mongomock has none):
one indexed lookup by _id per stream every POLL_SECONDS.

A stream outlasts the request that checked its token, so the token is checked again every
AUTHORIZATION_RECHECK_SECONDS (answered from the gateway's token cache, so auth is asked at most once
per TOKEN_CACHE_SECONDS): a revoked token, or one that cannot be checked because auth is down, ends
the stream as soon as it would refuse any other call. And each user may hold at most
MAX_EVENT_STREAMS_PER_USER streams open in one gateway process (gateway.places).
"""

import json
import select
import socket
import time
from collections.abc import Callable, Iterator

from common import shutdown
from common.jobs import FINAL, Status, public_view

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15
# A stream ends after this long even if the job has not; the client reconnects with Last-Event-ID,
# which checks its token again.
MAX_STREAM_SECONDS = 600
RETRY_MILLISECONDS = 2000
AUTHORIZATION_RECHECK_SECONDS = 1

_STAGE = {Status.QUEUED: 0, Status.CONVERTING: 1, Status.DONE: 4, Status.FAILED: 4}
HEARTBEAT = b": keep-alive\n\n"


def event_id(job: dict) -> int:
    return job.get("attempts", 0) * 1000 + 200 * _STAGE[Status(job["status"])] + job["progress"]


def event_name(job: dict) -> str:
    return job["status"] if job["status"] in FINAL else "progress"


def encode(name: str, ident: int, data: dict) -> bytes:
    return f"id: {ident}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def last_event_id(header: str | None) -> int:
    """The id a reconnecting client last saw; -1 (from the start) when absent or not one of ours."""
    try:
        return int(header or "")
    except ValueError:
        return -1


def follow(read_job: Callable[[], dict | None], after: int, client_gone: Callable[[], bool],
           authorized: Callable[[], bool] = lambda: True, *, clock=time.monotonic, sleep=time.sleep) -> Iterator[bytes]:
    """The stream of one job: events with ids above `after`, heartbeats, and its end (the job final or
    gone, the client gone, the gateway stopping, or `authorized()` false)."""
    started = last_write = last_check = clock()
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    while True:
        if clock() - last_check >= AUTHORIZATION_RECHECK_SECONDS:
            if not authorized():
                return
            last_check = clock()
        job = read_job()
        if job is None:  # deleted while followed
            return
        ident = event_id(job)
        if ident > after:
            yield encode(event_name(job), ident, public_view(job))
            after, last_write = ident, clock()
        if job["status"] in FINAL or clock() - started >= MAX_STREAM_SECONDS:
            return
        if clock() - last_write >= HEARTBEAT_SECONDS:
            yield HEARTBEAT
            last_write = clock()
        sleep(POLL_SECONDS)
        if client_gone() or shutdown.requested.is_set():
            return


def disconnect_probe(environ: dict) -> Callable[[], bool]:
    """True once the client has closed its end, seen without writing to it.

    A closed peer makes its socket readable with nothing to read: noticed within a poll, instead
    of at the next heartbeat write, so a client that leaves frees its connection within a second."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone
