"""Start-up of a service process, both kinds side by side: serve_http (gunicorn, for auth and the gateway)
and serve_consumer (a queue consumer, for the converter and notification); logging and signals for both."""

import importlib
import logging
import os
import signal
import threading
from dataclasses import dataclass

from common import debugger, http_worker, logs, metrics, telemetry
from common.handler import Handler

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so that a consumer can finish its message and exit 0."""
    stop = threading.Event()

    def handle(signum, _frame):
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


@dataclass(frozen=True)
class ConsumerService:
    """What a consumer service's `build` makes: the handler of its queue, the queues it publishes to, and
    its background tasks (each one's run(stop) works beside the consumer, in a thread of its own)."""

    queue: str
    handler: Handler
    publishes_to: tuple[str, ...] = ()
    background_tasks: tuple = ()


def serve_consumer(settings_class, build) -> None:
    """The main() of a consumer service: settings, logging, metrics and traces, then `build(settings)`
    (a ConsumerService), then consume until SIGTERM."""
    from common.consumer import consumer
    from common.settings import load

    settings = load(settings_class)
    logs.configure(settings.log_level)
    debugger.listen_if_requested()
    metrics.serve(settings.metrics_port)
    provider = telemetry.install(settings)
    service = build(settings)
    stop = stop_on_signals()
    for task in service.background_tasks:
        threading.Thread(target=task.run, args=(stop,), name=type(task).__name__, daemon=True).start()
    consumer(settings, service.queue, service.handler, service.publishes_to, tracer_provider=provider).run(stop)


def serve_http(app_factory, *, port: int, workers: int, threads: int, reload: bool, log_level: str,
               streaming: bool = False, warm: tuple[str, ...] = ()) -> None:
    """Run a WSGI app under gunicorn, configured from settings rather than a command line.

    An app that cannot be built stops the whole server at once, with a non-zero exit: see `load`.
    streaming: long-lived responses and untrusted clients, served by common.http_worker's gevent
    worker instead of threads (`threads` is then unused).

    With `reload` (DEV_RELOAD), gunicorn starts new workers when a file changes. They are forked from
    this process, so app_factory must import the service's code itself, in the worker: what this process
    imported before the change (settings, logging, this module) is what a new worker would run. The
    libraries named in `warm` (never the service's own code) are then imported here, once: each reloaded
    worker inherits them and imports only the code that can have changed (docs/benchmarks.md, edit to
    live). Under gevent (`streaming`) this process first patches the standard library itself, as the
    worker would, so that the libraries it imports for its workers (pymongo, pika, requests) open
    cooperative sockets and locks. Without reload, the master imports none of them and only the worker
    patches: production's master stays a plain process.

    With DEBUG (common.debugger), one worker, which listens for the debugger once it is ready (after gevent
    has patched it), and no worker timeout: a worker paused at a breakpoint is not killed."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.errors import AppImportError

    class Server(BaseApplication):
        def load_config(self):
            options = {
                "bind": f"0.0.0.0:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "reload": reload,
                "reload_engine": reload_engine,
                "loglevel": log_level.lower(),
                "accesslog": "-",
                # Uploads can be large and slow; the gateway streams them to storage as they come.
                "timeout": 300,
                "graceful_timeout": 20,
                "worker_tmp_dir": "/dev/shm",
                # Each worker counts in PROMETHEUS_MULTIPROC_DIR, and /metrics adds them up (common.metrics).
                "on_starting": metrics.prepare_multiprocess_dir,
                "child_exit": metrics.worker_exited,
                # Probes and noise: no control socket (nobody runs gunicornc in a container, and the
                # image user's home, where it would go, does not exist).
                "control_socket_disable": True,
            }
            if streaming:
                options.update(http_worker.OPTIONS)
            if debugging is not None:
                options.update(workers=1, timeout=0,
                               post_worker_init=lambda _worker: debugger.listen(debugging.debug_port))
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            # Probes: gunicorn halts when a worker fails to boot, except when the worker raises
            # SystemExit (a bad setting, a missing module): that worker is respawned forever while the
            # port stays open and /healthz hangs. As an AppImportError the arbiter exits non-zero.
            try:
                return app_factory()
            except SystemExit as error:
                raise AppImportError(str(error.code)) from None

    logs.configure(log_level)
    if streaming:
        from common import patches

        patches.check()
    reload_engine = "auto"
    if reload:
        from common import dev_reload

        reload_engine = dev_reload.register()
        if streaming:
            from gevent import monkey

            monkey.patch_all()
        for library in warm:
            importlib.import_module(library)
    debugging = debugger.requested()
    if workers > 1 and not os.environ.get(metrics.MULTIPROCESS_DIR) and debugging is None:
        log.warning("metrics will not add up: each of the %d workers counts alone; set %s to an empty folder "
                    "(compose and the manifests do)", workers, metrics.MULTIPROCESS_DIR)
    Server().run()
