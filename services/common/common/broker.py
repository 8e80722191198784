"""RabbitMQ: the queue topology and a confirming publisher (the consumer is common.consumer).

Topology, declared the same way by every service at start: each work queue is durable and
dead-letters into `<queue>.dead` through the `dead-letter` exchange. Messages are persistent JSON
and every publish waits for the broker's confirm.

The video queue is a priority queue (a classic queue with `x-max-priority`): the gateway publishes each
job with a priority that puts a user's first jobs before other users' later ones (gateway.fairness).
A queue declared before it had priorities cannot take the argument (RabbitMQ refuses a declaration
with other arguments): its consumer moves it over (common.queue_migration), its publisher uses it as
it is meanwhile.
"""

import contextlib
import json
import logging
import threading

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ChannelClosedByBroker

from common import queue_migration, telemetry

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
# Priorities 1..MAX_PRIORITY (0 is a message published without one). RabbitMQ keeps a sub-queue per
# level and recommends no more than 5.
MAX_PRIORITY = 5
PERSISTENT = pika.BasicProperties(content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent)


def connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if "heartbeat=" not in url:  # the URL may set its own (?heartbeat=N)
        params.heartbeat = 30
    # Fail fast when the broker is away, so callers can answer 503 or back off instead of hanging.
    params.connection_attempts = 1
    params.socket_timeout = 3
    params.stack_timeout = 5
    params.blocked_connection_timeout = 10
    params.client_properties = {"connection_name": threading.current_thread().name}
    return params


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


def queue_arguments(queue: str, prioritised: bool) -> dict:
    arguments = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": queue}
    return {**arguments, "x-max-priority": MAX_PRIORITY} if prioritised else arguments


def declare_topology(channel: BlockingChannel, queues, prioritised=(), migrates: bool = False) -> None:
    """Declare `queues` with their dead-letter queues; those in `prioritised` as priority queues.

    A prioritised queue that exists without priorities is migrated when `migrates` (its consumer,
    whose broker user may read it), else used as it is (the publisher: priorities are then ignored)."""
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    for queue in queues:
        channel.queue_declare(dead_letter_queue(queue), durable=True)
        channel.queue_bind(dead_letter_queue(queue), DEAD_LETTER_EXCHANGE, routing_key=queue)
        if queue not in prioritised:
            channel.queue_declare(queue, durable=True, arguments=queue_arguments(queue, prioritised=False))
        elif not queue_migration.declares(channel.connection, queue, queue_arguments(queue, prioritised=True)):
            if migrates:
                queue_migration.migrate(channel.connection, queue, queue_arguments(queue, prioritised=True))
            else:
                log.warning("the queue predates priorities: its consumer migrates it; until then it is first in, "
                            "first out", extra={"queue": queue})
                channel.queue_declare(queue, passive=True)
        elif migrates:
            queue_migration.finish_interrupted(channel.connection, queue)


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def publish(channel: BlockingChannel, queue: str, message: dict, priority: int | None = None) -> None:
    """Publish on a confirming channel; returns once the broker has the message on disk."""
    # Properties of its own for each message: the tracing puts the message's traceparent in its headers.
    properties = pika.BasicProperties(content_type=PERSISTENT.content_type, delivery_mode=PERSISTENT.delivery_mode,
                                      headers={}, priority=priority)
    channel.basic_publish("", queue, encode(message), properties, mandatory=True)


class PublishError(Exception):
    """The broker did not take the message."""


class Publisher:
    """A thread-safe publisher for request handlers: one lazy connection, rebuilt when it breaks. The
    depths it reports (for /metrics and /readyz) are read on a connection of their own (QueueProbe)."""

    def __init__(self, url: str, queues, prioritised=()):
        self._url = url
        self._queues = tuple(queues)
        self._prioritised = tuple(prioritised)
        self._lock = threading.Lock()
        self._connection = None
        self._channel = None
        self._probe = QueueProbe(url)

    def publish(self, queue: str, message: dict, priority: int | None = None) -> None:
        try:
            self._on_channel(lambda channel: publish(channel, queue, message, priority))
        except AMQPError as error:
            raise PublishError(f"RabbitMQ did not take the message: {error!r}") from error

    def consumer_count(self, queue: str) -> int:
        return self.queue_counts(queue)[1]

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers attached) of an existing queue."""
        return self._probe.counts(queue)

    def ping(self) -> None:
        self._on_channel(lambda channel: channel.connection.process_data_events(time_limit=0))

    def close(self) -> None:
        with self._lock:
            self._close()
        self._probe.close()

    def _on_channel(self, action) -> None:
        """ACTION(channel) on the open channel. The connection is serviced only when used, so one idle for
        two heartbeat intervals has been dropped by the broker: then one more try on a new one."""
        with self._lock:
            for fresh in (self._channel is None, True):
                try:
                    action(self._open_channel())
                    return
                except AMQPError:
                    self._close()
                    if fresh:
                        raise

    def _open_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._close()
            self._connection = pika.BlockingConnection(connection_parameters(self._url))
            channel = self._connection.channel()
            declare_topology(channel, self._queues, self._prioritised)
            channel.confirm_delivery()
            telemetry.instrument_channel(channel)
            self._channel = channel
        return self._channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()


class QueueProbe:
    """How full queues are, from passive declares (no management API), on a lazy connection of its own:
    a scrape never waits for a publish, and the channel that a missing queue closes (404) is never the
    one uploads publish on."""

    def __init__(self, url: str):
        self._url = url
        self._lock = threading.Lock()
        self._connection = None
        self._channel = None

    def counts(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers attached); ChannelClosedByBroker when there is no such queue."""
        with self._lock:
            # A connection idle for long may have been dropped by the broker: one more try on a new one.
            for fresh in (self._channel is None, True):
                try:
                    method = self._open_channel().queue_declare(queue, passive=True).method
                    return method.message_count, method.consumer_count
                except ChannelClosedByBroker:
                    self._channel = None  # that queue's answer; the connection stays
                    raise
                except AMQPError:
                    self.close_unlocked()
                    if fresh:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self.close_unlocked()

    def close_unlocked(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()

    def _open_channel(self) -> BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            self.close_unlocked()
            self._connection = pika.BlockingConnection(connection_parameters(self._url))
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel
