"""What the services' own spans say of each job, and the users that upload them.

Every span the services of this process end is kept by an in-memory exporter added to their
TracerProviders (runlocal.traces.providers()), as the trace tests do. One upload is one trace: its
`POST /upload` span carries the job_id; the rest of the job (GridFS writes, the publish, the
converter's `<queue> process`, `ffmpeg`, the MP3's store and announcement) are spans of the same trace.
Times are the spans' own clocks (nanoseconds since the epoch), so a client's time.time_ns() compares.
"""

import secrets
import threading
import time
from collections import defaultdict

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.stack import Client

_lock = threading.Lock()
_exporter: InMemorySpanExporter | None = None
_attached: set[int] = set()


def collect() -> InMemorySpanExporter:
    """The one exporter, attached to every provider that exists now (call it after a stack starts)."""
    global _exporter
    from runlocal import traces

    with _lock:
        if _exporter is None:
            _exporter = InMemorySpanExporter()
        for provider in traces.providers():
            if id(provider) not in _attached:
                provider.add_span_processor(SimpleSpanProcessor(_exporter))
                _attached.add(id(provider))
        return _exporter


class JobTrace:
    """The spans of one job's trace, by name (the first of each name; `all` for repeated ones)."""

    def __init__(self, spans):
        self.all = defaultdict(list)
        for span in sorted(spans, key=lambda s: s.start_time):
            self.all[span.name].append(span)

    def first(self, prefix: str):
        for name, spans in self.all.items():
            if name.startswith(prefix) or name == prefix:
                return spans[0]
        raise KeyError(f"no span {prefix!r} in {sorted(self.all)}")

    def has(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.all)

    def start(self, prefix: str) -> float:
        return self.first(prefix).start_time / 1e9

    def end(self, prefix: str) -> float:
        return self.first(prefix).end_time / 1e9


def job_trace(job_id: str, *awaited: str, timeout: float = 900) -> JobTrace:
    """The job's trace once it holds a span of each `awaited` name (e.g. "<mp3 queue> send", the MP3's
    announcement), waiting for them; a failed job raises."""
    exporter = collect()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = exporter.get_finished_spans()
        roots = [s for s in spans if s.attributes.get("job_id") == job_id and s.name.startswith("POST")]
        if roots:
            trace_id = roots[0].context.trace_id
            mine = JobTrace([s for s in spans if s.context.trace_id == trace_id])
            if all(mine.has(name) for name in awaited):
                return mine
            process = [s for s in mine.all.get(next((n for n in mine.all if n.endswith(" process")), ""), [])]
            if any(s.attributes.get("mp3converter.outcome") == "reject" for s in process):
                raise RuntimeError(f"job {job_id} failed: {process[-1].attributes.get('mp3converter.reason')}")
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id}: no {awaited} spans after {timeout} s")


def add_users(env: dict, count: int) -> list[tuple[str, str]]:
    """`count` accounts in the stack's user database, as scripts/create-user makes them: (email, password)."""
    from auth.database import engine_for
    from auth.passwords import hash_password
    from auth.users import UserStore
    from common.settings import AuthSettings, load
    from runlocal.throwaway import environment

    with environment(env):
        store = UserStore(engine_for(load(AuthSettings)))
    users = []
    for index in range(count):
        email, password = f"user{index}-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(12)
        store.add(email, hash_password(password))
        users.append((email, password))
    return users


def logged_in(stack, user: tuple[str, str], curl: bool = True) -> Client:
    client = Client(stack.gateway_url, curl=curl)
    client.login(*user)
    return client
