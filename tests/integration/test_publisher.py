"""common.broker.Publisher with a real broker, after the broker dropped its connection for idleness.

The gateway's publisher connection is lazy and serviced only when used (pika's BlockingConnection sends
heartbeats only then): a gateway that neither publishes nor is probed for two heartbeat intervals finds
it closed by the broker. That is not the broker being down; each use reconnects once instead.
"""

import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from common.broker import Publisher

pytestmark = pytest.mark.integration

HEARTBEAT_SECONDS = 1


def with_heartbeat(url: str, seconds: int) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, f"heartbeat={seconds}"]))
    return urlunsplit(parts._replace(query=query))


@pytest.fixture
def idle_publisher(stack_env):
    """A publisher whose connection was open, then sat idle until the broker closed it."""
    queue = stack_env["VIDEO_QUEUE"] + ".idle"
    publisher = Publisher(with_heartbeat(stack_env["RABBITMQ_URL"], HEARTBEAT_SECONDS), (queue,))
    publisher.ping()
    dropped = publisher._connection
    # RabbitMQ closes a connection that sent nothing for two heartbeat intervals.
    time.sleep(HEARTBEAT_SECONDS * 5)
    try:
        yield publisher, queue
        assert publisher._connection is not dropped, "the connection the broker dropped is still used"
    finally:
        channel = publisher._open_channel()
        channel.queue_delete(queue)
        channel.queue_delete(queue + ".dead")
        publisher.close()


def test_the_readiness_ping_reconnects_instead_of_reporting_the_broker_down(idle_publisher):
    publisher, _queue = idle_publisher
    publisher.ping()


def test_a_publish_reconnects_and_the_message_arrives(idle_publisher):
    publisher, queue = idle_publisher
    publisher.publish(queue, {"job_id": "j1"})
    assert publisher.queue_counts(queue) == (1, 0)
