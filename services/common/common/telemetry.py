"""Traces with OpenTelemetry: one trace per upload, across the four services and RabbitMQ.

Configured only by the standard variables: OTEL_TRACES_EXPORTER (`otlp`, `console` or `none`),
OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over HTTP, e.g. Jaeger's :4318) and OTEL_SERVICE_NAME (each service's
own name unless set). With `none` the spans are still made, so that log lines carry their trace_id and
the context still crosses the services; they just go nowhere.

Where the spans come from:
- HTTP: the Flask instrumentation makes each request's server span, continuing the caller's trace (W3C
  traceparent); the requests instrumentation makes the gateway's calls to auth, and passes the context on.
- MongoDB: the pymongo instrumentation, a span per command. The GridFS transfers are spans of their own
  (a file is many chunk commands, and the in-process mongomock makes none).
- RabbitMQ: the pika instrumentation wraps each publish in a span and puts its traceparent in the
  message's headers. Consuming is written here (`Consumption`): pika's consumer span ends when the
  callback returns, before the worker thread has done the work, and cannot tell a redelivery. A first
  delivery continues the publisher's trace; a redelivery starts a trace of its own, linked to it.
- The rest worth seeing (the ffmpeg run) is `traced`.

A service process has two TracerProviders that share one exporter and the service.name: the service's
own (`install` returns it), which starts the traces of the requests it serves and the messages it
consumes, and the process's global one, which records a span only under a parent (ParentBased on
ALWAYS_OFF). So the instrumentations and `traced` add to the work's trace, and what the process does
outside any (a readiness probe's MongoDB ping, the cleanup's sweep) starts no trace.
"""

import functools
import os
import sys
import threading
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, SpanKind, StatusCode

from common.settings import TelemetrySettings, service_of

SCOPE = "mp3converter"
OTLP_TRACES_PATH = "/v1/traces"




def tracer_provider(settings: TelemetrySettings) -> TracerProvider:
    """A TracerProvider whose spans belong to the service these settings are for, exported as they say."""
    return _providers(settings, (None,))[0]


def install(settings: TelemetrySettings) -> TracerProvider:
    """At the start of a service's process, before its MongoDB client is made: the global provider,
    which records spans only under a parent, and the instrumentations of requests and pymongo.
    Returns the service's own provider, for the spans that start a trace (common.service)."""
    own, under_a_parent = _providers(settings, (None, ParentBased(ALWAYS_OFF)))
    trace.set_tracer_provider(under_a_parent)
    instrument_libraries()
    return own


def _providers(settings: TelemetrySettings, samplers) -> list[TracerProvider]:
    """One TracerProvider per sampler (None: the SDK's default), all of the service and one exporter."""
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_of(settings)})
    providers = [TracerProvider(resource=resource, sampler=sampler) for sampler in samplers]
    processor = _processor(settings)
    if processor is not None:
        for provider in providers:
            provider.add_span_processor(processor)
    return providers


def _processor(settings: TelemetrySettings):
    if settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = str(settings.otel_exporter_otlp_endpoint).rstrip("/") + OTLP_TRACES_PATH
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    if settings.otel_traces_exporter == "console":
        # One JSON object per line, printed as each span ends: readable next to the JSON log lines.
        return SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout, formatter=_json_line))
    return None


def _json_line(span) -> str:
    return span.to_json(indent=None) + "\n"


_tracer = trace.get_tracer(SCOPE)
_libraries_lock = threading.Lock()
_libraries_instrumented = False


def instrument_libraries() -> None:
    """The process-wide instrumentations of requests and pymongo (they patch the libraries), once, with the
    global TracerProvider. A MongoDB client traces its commands only if it was made after this."""
    global _libraries_instrumented
    with _libraries_lock:
        if _libraries_instrumented:
            return
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().instrument()
        PymongoInstrumentor().instrument()
        _libraries_instrumented = True


# Probes and scrapes come every few seconds: traces of them would bury the ones that matter.
UNTRACED_URLS = "/healthz,/readyz,/metrics"


def instrument_app(app, provider: TracerProvider | None = None) -> None:
    """Server spans for every request of a Flask app, from the service's TracerProvider (None: the
    global one)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_URLS)


def instrument_channel(channel) -> None:
    """Each publish on this pika channel becomes a span, and carries its traceparent in the headers."""
    from opentelemetry.instrumentation.pika import PikaInstrumentor

    PikaInstrumentor.instrument_channel(channel)


def traced(name: str):
    """Decorator: each call is a span of the current trace."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with _tracer.start_as_current_span(name):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def span(name: str):
    """Context manager: the block is a span of the current trace."""
    return _tracer.start_as_current_span(name)


def annotate(**attributes) -> None:
    """Attributes on the current span (searchable in Jaeger, e.g. job_id)."""
    trace.get_current_span().set_attributes(attributes)


def log_fields() -> dict[str, str]:
    """trace_id and span_id of the current span, for a log line; nothing outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": trace.format_trace_id(context.trace_id), "span_id": trace.format_span_id(context.span_id)}


class Consumption:
    """The span of one delivery of a message, from its arrival until it is settled (ack, reject, requeue).

    Made where the message arrives; `run` runs code inside it from any thread (the worker that handles
    the message, then the connection's thread that publishes the follow-up and settles); `end` ends it."""

    def __init__(self, provider: TracerProvider | None, queue: str, headers: Mapping | None, redelivered: bool):
        sent = propagate.extract(dict(headers or {}))
        sent_span = trace.get_current_span(sent).get_span_context()
        parent, links = sent, ()
        if redelivered and sent_span.is_valid:
            # A redelivery may come long after: a trace of its own, linked to the upload's.
            parent, links = otel_context.Context(), (Link(sent_span, {"messaging.redelivery": True}),)
        tracer = provider.get_tracer(SCOPE) if provider is not None else _tracer
        self._span = tracer.start_span(
            f"{queue} process", context=parent, kind=SpanKind.CONSUMER, links=links,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": queue,
                        "messaging.operation.type": "process", "messaging.rabbitmq.redelivered": redelivered},
        )
        self._ended = threading.Event()

    def run(self, function, *args):
        token = otel_context.attach(trace.set_span_in_context(self._span))
        try:
            return function(*args)
        finally:
            otel_context.detach(token)

    def end(self, outcome: str, reason: str = "") -> None:
        if self._ended.is_set():
            return
        self._ended.set()
        self._span.set_attribute("mp3converter.outcome", outcome)
        if reason:
            self._span.set_attribute("mp3converter.reason", reason)
        if outcome == "reject":  # dead-lettered: this message will never succeed
            self._span.set_status(StatusCode.ERROR, reason)
        self._span.end()
