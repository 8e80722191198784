"""A RabbitMQ consumer that keeps its connection alive during long work and never loses a message.

The connection's thread only does I/O: it services heartbeats and settles deliveries. The handler
runs in a worker thread, one message at a time (prefetch 1). A delivery is acked only after the
handler has stored its result and its follow-up messages are confirmed by the broker; anything
else hands it back or dead-letters it. When the broker goes away the consumer reconnects with
backoff; on stop it finishes or hands back the current message within a grace period.

Its heartbeat file (common.healthcheck) stays fresh as long as this loop runs, reconnecting included,
and says whether it is connected: the probes tell a live consumer from a ready one.
"""

import contextlib
import functools
import logging
import threading
import time
from dataclasses import dataclass, field

import pika
from pika.exceptions import AMQPError
from pymongo.errors import ConnectionFailure

from common import metrics, telemetry
from common.broker import connection_parameters, declare_topology, publish
from common.handler import Action, Delivery, Handler, Outcome, Reject
from common.healthcheck import Heartbeat

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 15.0


@dataclass
class _Work:
    tag: int
    trace: telemetry.Consumption
    thread: threading.Thread | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    settled: threading.Event = field(default_factory=threading.Event)


class Consumer:
    def __init__(self, *, url: str, queue: str, queues, handler: Handler, prioritised: bool = False,
                 heartbeat_file: str = "", shutdown_grace_seconds: float = 20.0, tracer_provider=None):
        self.queue = queue
        self._url = url
        self._queues = tuple(queues)
        self._prioritised = (queue,) if prioritised else ()
        self._handler = handler
        self._heartbeat = Heartbeat(heartbeat_file)
        self._grace = shutdown_grace_seconds
        self._tracer_provider = tracer_provider
        for counter in (metrics.REDELIVERIES, metrics.DEAD_LETTERS):
            counter.labels(queue)  # a series from zero, so that rate() sees the first one
        self._work: _Work | None = None
        self._connection: pika.BlockingConnection | None = None
        self._tidying: threading.Thread | None = None  # the last settled work's thread, maybe still tidying
        self.consuming = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, reconnecting whenever the broker goes away."""
        backoff = 0.5
        self._heartbeat.beat(connected=False)
        threading.Thread(target=self._wake_on, args=(stop,), name=f"wake {self.queue}", daemon=True).start()
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._serve(stop)
            except AMQPError as error:
                if time.monotonic() - started > MAX_BACKOFF_SECONDS:
                    backoff = 0.5
                log.warning("RabbitMQ connection lost; reconnecting",
                            extra={"queue": self.queue, "error": repr(error), "retry_in_s": backoff})
                self._wait(stop, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        log.info("consumer stopped", extra={"queue": self.queue})

    def _wake_on(self, stop: threading.Event) -> None:
        """The connection's thread waits for the broker up to POLL_SECONDS at a time: on stop it is woken at
        once, so that a stopping consumer (a restart for new code, a pod deleted) hands back without delay."""
        stop.wait()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(AMQPError):
                connection.add_callback_threadsafe(lambda: None)

    def _serve(self, stop: threading.Event) -> None:
        connection = self._connection = pika.BlockingConnection(connection_parameters(self._url))
        try:
            channel = connection.channel()
            declare_topology(channel, self._queues, self._prioritised, migrates=True)
            channel.basic_qos(prefetch_count=1)
            confirming = connection.channel()
            confirming.confirm_delivery()
            telemetry.instrument_channel(confirming)
            on_message = functools.partial(self._on_message, connection, channel, confirming)
            consumer_tag = channel.basic_consume(self.queue, on_message)
            self.consuming.set()
            log.info("consuming", extra={"queue": self.queue})
            stopping_since = None
            while True:
                if stop.is_set() and stopping_since is None:
                    stopping_since = time.monotonic()
                    # Synchronous: once it returns, no further message reaches on_message.
                    channel.basic_cancel(consumer_tag)
                if stopping_since is not None:
                    if self._work is None:
                        break
                    if time.monotonic() - stopping_since >= self._grace:
                        self._work.cancel.set()
                connection.process_data_events(time_limit=POLL_SECONDS)
                self._heartbeat.beat(connected=True)
        finally:
            self._connection = None
            self.consuming.clear()
            self._abandon_work()
            if self._tidying is not None:
                self._tidying.join(timeout=self._grace)
            if connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()

    def _on_message(self, connection, channel, confirming, _channel, method, properties, body) -> None:
        if method.redelivered:
            metrics.REDELIVERIES.labels(self.queue).inc()
        trace = telemetry.Consumption(self._tracer_provider, self.queue, properties.headers, method.redelivered)
        work = _Work(tag=method.delivery_tag, trace=trace)
        delivery = Delivery(body=body, redelivered=method.redelivered)
        settle = functools.partial(self._settle, channel, confirming, work)

        def run():
            outcome = trace.run(self._outcome, delivery, work.cancel)
            # If the connection is gone the broker hands the message to someone else.
            with contextlib.suppress(AMQPError):
                connection.add_callback_threadsafe(functools.partial(trace.run, settle, outcome))
            if outcome.then is not None:
                self._once_settled(work, outcome.then)

        work.thread = threading.Thread(target=run, name=f"{self.queue}-work", daemon=True)
        self._work = work
        work.thread.start()

    def _outcome(self, delivery: Delivery, cancel: threading.Event) -> Outcome:
        return outcome_of(self._handler, delivery, cancel, queue=self.queue)

    def _settle(self, channel, confirming, work: _Work, outcome: Outcome) -> None:
        if outcome.action is Action.ACK:
            for queue, message in outcome.publish:
                publish(confirming, queue, message)
            channel.basic_ack(work.tag)
        elif outcome.action is Action.REJECT:
            log.warning("message dead-lettered", extra={"queue": self.queue, "reason": outcome.reason})
            channel.basic_reject(work.tag, requeue=False)
            metrics.DEAD_LETTERS.labels(self.queue).inc()
        else:
            log.info("message handed back", extra={"queue": self.queue, "reason": outcome.reason})
            channel.basic_nack(work.tag, requeue=True)
        work.trace.end(outcome.action.value, outcome.reason)
        self._work = None
        work.settled.set()

    def _once_settled(self, work: _Work, then) -> None:
        """The outcome's tidying up, in the worker's thread once the connection's thread has settled the
        delivery; never if the connection goes first (the message comes again)."""
        while not work.settled.wait(POLL_SECONDS):
            if work.cancel.is_set():
                return
        self._tidying = work.thread
        try:
            then()
        except Exception:
            log.exception("tidying up after a settled message failed", extra={"queue": self.queue})

    def _abandon_work(self) -> None:
        """The connection is closing: unsettled work will be redelivered, so stop doing it."""
        work, self._work = self._work, None
        if work is not None and work.thread is not None:
            work.cancel.set()
            work.thread.join()
            work.trace.end("abandoned", "the connection closed before the message was settled")

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Back off before reconnecting, the heartbeat still beating: the loop is alive."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self._heartbeat.beat(connected=False)
            stop.wait(min(left, POLL_SECONDS))


def outcome_of(handler: Handler, delivery: Delivery, cancel: threading.Event, queue: str = "") -> Outcome:
    """What to do with a delivery: the handler's answer, with rejections and failures mapped. A message
    that goes to the dead-letter queue takes its job to a final state first (JobHandler.give_up)."""
    outcome = _answer(handler, delivery, cancel, queue)
    if outcome.action is Action.REJECT:
        outcome = _give_up(handler, delivery, outcome, queue)
    return outcome


def _answer(handler: Handler, delivery: Delivery, cancel: threading.Event, queue: str) -> Outcome:
    try:
        return handler(delivery, cancel)
    except Reject as error:
        return Outcome.reject(str(error))
    except ConnectionFailure as error:
        # MongoDB unreachable: an outage, not a bad message. Handed back as often as it takes, never
        # dead-lettered (a redelivery while storage is down would otherwise count as a second failure).
        log.warning("storage unavailable; handing the message back", extra={"queue": queue, "error": repr(error)})
        return Outcome.requeue(f"storage unavailable: {error!r}")
    except Exception as error:
        # A bug or an unforeseen failure: one more try, then the dead-letter queue, never a loop.
        log.exception("handler failed", extra={"queue": queue})
        if delivery.redelivered:
            return Outcome.reject(f"Failed twice with an unexpected error ({type(error).__name__}).")
        return Outcome.requeue(repr(error))


def _give_up(handler: Handler, delivery: Delivery, rejected: Outcome, queue: str) -> Outcome:
    give_up = getattr(handler, "give_up", None)
    if give_up is None:
        return rejected
    try:
        give_up(delivery, rejected.reason)
    except ConnectionFailure as error:
        # The job cannot be failed now: keep the message until storage is back, rather than leave a
        # dead-lettered message whose job waits for ever.
        log.warning("storage unavailable; handing the message back", extra={"queue": queue, "error": repr(error)})
        return Outcome.requeue(f"storage unavailable: {error!r}")
    except Exception:
        log.exception("the job of a dead-lettered message could not be failed", extra={"queue": queue})
    return rejected


def consumer(settings, queue: str, handler: Handler, publishes_to=(), tracer_provider=None) -> Consumer:
    """A consumer of `queue` configured from a service's ConsumerSettings. It declares the queues it uses,
    `queue` and those its handler publishes to, and no others: each service's broker user may touch only
    its own (init/rabbitmq-definitions.sh). Each message it takes starts a span of `tracer_provider`
    (None: the global one). The video queue is a priority queue (common.broker)."""
    return Consumer(url=settings.rabbitmq_url, queue=queue, queues=(queue, *publishes_to),
                    handler=handler, prioritised=queue == settings.video_queue, heartbeat_file=settings.heartbeat_file,
                    shutdown_grace_seconds=settings.shutdown_grace_seconds,
                    tracer_provider=tracer_provider)
