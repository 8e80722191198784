"""Metrics for Prometheus: GET /metrics on auth and gateway, and on METRICS_PORT for the consumers.

Under gunicorn each worker is a process of its own, so each would count only what it served. compose and
the manifests therefore give auth and the gateway PROMETHEUS_MULTIPROC_DIR (common.settings'
container_variables; under /tmp: a tmpfs in compose, an emptyDir in Kubernetes): prometheus_client's
multiprocess mode then keeps every worker's values in files there, and /metrics adds them up, whichever
worker answers. The server empties the folder when it starts, and a worker that exits is marked dead (its
live gauges go; what it counted stays in the totals).

Queue depths are read from the broker when Prometheus scrapes the gateway (a passive queue_declare: no
management API), so they are exact at that moment and never cached in a worker; on a connection of
their own (common.broker.QueueProbe), so a scrape never holds up or breaks a publish.

Every label is bounded by the app, not by what clients send: a method HTTP does not define is OTHER,
a path that is no route is `unmatched`.
"""

import glob
import logging
import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# In multiprocess mode each metric opens its file when it is defined, below: the folder must be there.
if os.environ.get(MULTIPROCESS_DIR):
    os.makedirs(os.environ[MULTIPROCESS_DIR], exist_ok=True)
# The _created series double every counter and mean nothing on a dashboard.
disable_created_metrics()

HTTP_SECONDS = Histogram(
    "http_server_request_duration_seconds", "Time to answer an HTTP request (until its headers), by route.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
UPLOADS = Counter("mp3converter_uploads", "Uploads accepted and queued (202).")
UPLOAD_BYTES = Counter("mp3converter_upload_bytes", "Bytes of the uploads accepted and queued.")
JOBS_FINISHED = Counter("mp3converter_jobs_finished", "Jobs that reached a final status.", ["status"])
CONVERSION_SECONDS = Histogram(
    "mp3converter_conversion_seconds", "Time of a successful conversion: fetch the video, ffmpeg, store the MP3.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600),
)
REDELIVERIES = Counter("mp3converter_consumer_redeliveries", "Messages delivered again (after a crash, a "
                       "lost connection or a handed-back message).", ["queue"])
DEAD_LETTERS = Counter("mp3converter_consumer_dead_letters", "Messages rejected to the dead-letter queue.", ["queue"])
for status in ("done", "failed"):
    JOBS_FINISHED.labels(status)


def upload_accepted(size: int) -> None:
    UPLOADS.inc()
    UPLOAD_BYTES.inc(size)


# --- HTTP services -------------------------------------------------------------------------------------

_STARTED = "mp3converter.metrics.started"
# The methods HTTP defines. gunicorn passes on any upper-case word as a method: as a label, each made-up
# one would be series of its own (and a file's worth in multiprocess mode), so they are all OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})


def instrument_app(app, service: str, collectors=()) -> None:
    """Time every request of a Flask app by route and status, and serve GET /metrics (with `collectors`)."""
    from flask import Response, request

    @app.before_request
    def start_clock():
        request.environ[_STARTED] = time.perf_counter()

    @app.after_request
    def observe(response):
        started = request.environ.pop(_STARTED, None)
        if started is not None:
            # Likewise any path that is none of the routes is `unmatched`: the labels are bounded by the app.
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            method = request.method if request.method in METHODS else "OTHER"
            HTTP_SECONDS.labels(service, method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response

    def metrics():
        return Response(exposition(collectors), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


def exposition(collectors=()) -> bytes:
    """This process's metrics, or every worker's in multiprocess mode, plus `collectors`."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def prepare_multiprocess_dir(_server=None) -> None:
    """gunicorn's on_starting: forget the values of an earlier run (a restarted container keeps its emptyDir)."""
    path = os.environ.get(MULTIPROCESS_DIR)
    if path:
        os.makedirs(path, exist_ok=True)
        for leftover in glob.glob(os.path.join(path, "*.db")):
            os.remove(leftover)


def worker_exited(_server, worker) -> None:
    """gunicorn's child_exit: the worker's live gauges go, its counts stay."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(worker.pid)


class QueueDepths:
    """mp3converter_queue_messages and mp3converter_queue_consumers of each queue, read at scrape time."""

    def __init__(self, publisher, queues):
        self._publisher = publisher
        self._queues = tuple(queues)

    def collect(self):
        messages = GaugeMetricFamily("mp3converter_queue_messages", "Messages ready in the queue (from RabbitMQ).",
                                     labels=["queue"])
        consumers = GaugeMetricFamily("mp3converter_queue_consumers", "Consumers attached to the queue.",
                                      labels=["queue"])
        for queue in self._queues:
            try:
                ready, attached = self._publisher.queue_counts(queue)
            except Exception as error:  # the broker is away: no sample, rather than a failed scrape
                log.warning("queue depth unavailable", extra={"queue": queue, "error": repr(error)})
                continue
            messages.add_metric([queue], ready)
            consumers.add_metric([queue], attached)
        yield messages
        yield consumers


# --- consumers -------------------------------------------------------------------------------------------


def serve(port: int, address: str = "0.0.0.0") -> int:  # noqa: S104 (Prometheus scrapes the container)
    """Serve this process's metrics on http://address:port/metrics in a thread; returns the port."""
    server, _thread = start_http_server(port, addr=address)
    return server.server_port
