"""RabbitMQ: the queue topology, a confirming publisher, and a consumer that survives the broker.

Topology, declared the same way by every service at start: each work queue is durable and
dead-letters into `<queue>.dead` through the `dead-letter` exchange. Messages are persistent JSON
and every publish waits for the broker's confirm.
"""

import contextlib
import json
import logging
import threading

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

from common import telemetry

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
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


def declare_topology(channel: BlockingChannel, queues) -> None:
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    for queue in queues:
        channel.queue_declare(dead_letter_queue(queue), durable=True)
        channel.queue_bind(dead_letter_queue(queue), DEAD_LETTER_EXCHANGE, routing_key=queue)
        channel.queue_declare(
            queue,
            durable=True,
            arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": queue},
        )


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()



def publish(channel: BlockingChannel, queue: str, message: dict) -> None:
    """Publish on a confirming channel; returns once the broker has the message on disk."""
    # Properties of its own for each message: the tracing puts the message's traceparent in its headers.
    properties = pika.BasicProperties(content_type=PERSISTENT.content_type, delivery_mode=PERSISTENT.delivery_mode,
                                      headers={})
    channel.basic_publish("", queue, encode(message), properties, mandatory=True)


class PublishError(Exception):
    """The broker did not take the message."""


class Publisher:
    """A thread-safe publisher for request handlers: one lazy connection, rebuilt when it breaks."""

    def __init__(self, url: str, queues):
        self._url = url
        self._queues = tuple(queues)
        self._lock = threading.Lock()
        self._connection = None
        self._channel = None

    def publish(self, queue: str, message: dict) -> None:
        with self._lock:
            # A connection idle for long may have been dropped by the broker: one more try on a new one.
            for fresh in (self._channel is None, True):
                try:
                    publish(self._open_channel(), queue, message)
                    return
                except AMQPError as error:
                    self._close()
                    if fresh:
                        raise PublishError(f"RabbitMQ did not take the message: {error!r}") from error

    def consumer_count(self, queue: str) -> int:
        return self.queue_counts(queue)[1]

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers attached) of an existing queue, from a passive declare."""
        with self._lock:
            try:
                method = self._open_channel().queue_declare(queue, passive=True).method
            except AMQPError:
                self._close()
                raise
            return method.message_count, method.consumer_count

    def ping(self) -> None:
        with self._lock:
            try:
                self._open_channel().connection.process_data_events(time_limit=0)
            except AMQPError:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._close()
            self._connection = pika.BlockingConnection(connection_parameters(self._url))
            channel = self._connection.channel()
            declare_topology(channel, self._queues)
            channel.confirm_delivery()
            telemetry.instrument_channel(channel)
            self._channel = channel
        return self._channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()


