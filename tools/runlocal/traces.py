"""Traces when the four services share one process (scripts/run-local, the tests, the benchmarks).

In its own process each service installs one global TracerProvider (common.telemetry.install). Here
one process holds four, so the global one is a router: each service gets a TracerProvider of its own,
whose spans carry its service.name (`provider_for`, which its app and consumers are built with), and a
span made by an instrumentation or by `traced` belongs to the service of the span it is made under. A
span made under none is not recorded, as in a service's own process: a request this process makes
outside any service's work (a readiness poll, a test's client) starts no trace.
"""

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from common import telemetry
from common.settings import TelemetrySettings, service_of

_lock = threading.Lock()
_providers: dict[tuple, TracerProvider] = {}
_by_resource: dict[int, TracerProvider] = {}


def provider_for(settings: TelemetrySettings) -> TracerProvider:
    """The TracerProvider of the service these settings belong to: one per process and configuration."""
    key = (service_of(settings), settings.otel_traces_exporter, str(settings.otel_exporter_otlp_endpoint))
    with _lock:
        if key not in _providers:
            provider = telemetry.tracer_provider(settings)
            _providers[key] = provider
            _by_resource[id(provider.resource)] = provider
        return _providers[key]


def providers() -> list[TracerProvider]:
    """Every service's TracerProvider in this process (a test or a benchmark adds its exporter to them)."""
    with _lock:
        return list(_providers.values())


class _ServiceOfParent(trace.TracerProvider):
    """Hands out tracers whose spans belong to the service of their parent span, or are not recorded."""

    def get_tracer(self, instrumenting_module_name, instrumenting_library_version=None, schema_url=None,
                   attributes=None):
        return _ParentsTracer((instrumenting_module_name, instrumenting_library_version, schema_url, attributes))


class _ParentsTracer(trace.Tracer):
    def __init__(self, scope: tuple):
        self._scope = scope

    def _tracer(self, context) -> trace.Tracer:
        parent = trace.get_current_span(context)
        provider = _by_resource.get(id(getattr(parent, "resource", None)))
        return provider.get_tracer(*self._scope) if provider is not None else trace.NoOpTracer()

    def start_span(self, name, context=None, *args, **kwargs):
        return self._tracer(context).start_span(name, context, *args, **kwargs)

    def start_as_current_span(self, name, context=None, *args, **kwargs):
        return self._tracer(context).start_as_current_span(name, context, *args, **kwargs)


_ROUTER = _ServiceOfParent()
_installed = False


def install() -> None:
    """The router as this process's global TracerProvider, and the libraries instrumented, once (before
    a MongoDB client is made)."""
    global _installed
    with _lock:
        if not _installed:
            trace.set_tracer_provider(_ROUTER)
            _installed = True
    telemetry.instrument_libraries()
