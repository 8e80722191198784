"""Fair when busy, on the real RabbitMQ: the video queue hands out jobs in the order gateway.fairness
asks for, a message handed back keeps its place, and a queue declared before it had priorities is
moved over with its messages. Each test has queues of its own, deleted afterwards."""

import json
import secrets
import threading

import pika
import pytest

from common.broker import MAX_PRIORITY, PERSISTENT, Publisher, dead_letter_queue, declare_topology, queue_arguments
from common.consumer import Consumer
from common.handler import Outcome
from common.queue_migration import declares, holding_queue
from gateway.fairness import priority
from tests.servers import consuming


@pytest.fixture
def queue(servers):
    name = f"test.fair.{secrets.token_hex(4)}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(servers["RABBITMQ_URL"]))
    channel = connection.channel()
    for each in (name, dead_letter_queue(name), holding_queue(name)):
        channel.queue_delete(each)
    connection.close()


def admin_connection(servers):
    return pika.BlockingConnection(pika.URLParameters(servers["RABBITMQ_URL"]))


def consume_all(servers, queue: str, count: int, hand_back_first: bool = False) -> list[str]:
    """The jobs in the order the consumer (prefetch 1, as the converter) was handed them."""
    seen: list[str] = []
    done = threading.Event()

    def handler(delivery, _cancel):
        seen.append(json.loads(delivery.body)["job_id"])
        if hand_back_first and len(seen) == 1:
            return Outcome.requeue("handed back (test)")
        if len(seen) == count:
            done.set()
        return Outcome.ack()

    consumer = Consumer(url=servers["RABBITMQ_URL"], queue=queue, queues=(queue,), handler=handler, prioritised=True)
    with consuming(consumer):
        assert done.wait(30), f"only {seen} were delivered"
    return seen


def publish_as_the_gateway(servers, queue: str, uploads: list[str]) -> None:
    """Each upload `<owner>-<n>` published with the priority the gateway gives it, none converted yet."""
    publisher = Publisher(servers["RABBITMQ_URL"], (queue,), prioritised=(queue,))
    active: dict[str, list[int]] = {}
    for job in uploads:
        owner = job.split("-")[0]
        queued = active.setdefault(owner, [])
        level = priority(len(queued), min(queued) if queued else None)
        queued.append(level)
        publisher.publish(queue, {"job_id": job}, priority=level)
    publisher.close()


def test_another_users_first_job_goes_before_a_users_second(servers, queue):
    publish_as_the_gateway(servers, queue, ["alice-1", "alice-2", "alice-3", "bob-1", "alice-4", "carol-1", "bob-2"])
    assert consume_all(servers, queue, 7) == ["alice-1", "bob-1", "carol-1", "alice-2", "bob-2", "alice-3", "alice-4"]


def test_a_user_alone_gets_every_job_in_the_order_sent(servers, queue):
    jobs = [f"alice-{n}" for n in range(1, MAX_PRIORITY + 4)]  # past the lowest priority
    publish_as_the_gateway(servers, queue, jobs)
    assert consume_all(servers, queue, len(jobs)) == jobs


def test_a_message_handed_back_keeps_its_place(servers, queue):
    publish_as_the_gateway(servers, queue, ["alice-1", "bob-1", "alice-2"])
    assert consume_all(servers, queue, 4, hand_back_first=True) == ["alice-1", "alice-1", "bob-1", "alice-2"]


def old_queue_with(servers, queue: str, bodies: list[bytes]) -> None:
    """The queue as this project declared it before it had priorities, holding `bodies`."""
    connection = admin_connection(servers)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(queue, prioritised=False))
    for body in bodies:
        channel.basic_publish("", queue, body, PERSISTENT, mandatory=True)
    connection.close()


def bodies_in(servers, queue: str) -> list[bytes]:
    connection = admin_connection(servers)
    channel = connection.channel()
    found = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        found.append(got[2])
    connection.close()
    return found


def test_the_consumer_moves_an_old_queue_over_with_its_messages_in_order(servers, queue):
    bodies = [json.dumps({"job_id": f"old-{n}"}).encode() for n in range(20)]
    old_queue_with(servers, queue, bodies)
    connection = admin_connection(servers)
    # The publisher (no migration) uses the old queue as it is: uploads go on meanwhile.
    Publisher(servers["RABBITMQ_URL"], (queue,), prioritised=(queue,)).publish(queue, {"job_id": "new"}, priority=5)
    assert not declares(connection, queue, queue_arguments(queue, prioritised=True))

    declare_topology(connection.channel(), (queue,), prioritised=(queue,), migrates=True)

    assert declares(connection, queue, queue_arguments(queue, prioritised=True)), "still without priorities"
    probe = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        probe.queue_declare(holding_queue(queue), passive=True)
    connection.close()
    # The messages from before have no priority (0); the one published with its priority now goes first.
    assert bodies_in(servers, queue) == [b'{"job_id":"new"}', *bodies]


def test_a_migration_that_died_halfway_is_finished_by_the_next_start(servers, queue):
    """The old queue was already rebuilt, its messages still in <queue>.migrating."""
    connection = admin_connection(servers)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(queue, prioritised=True))
    channel.queue_declare(holding_queue(queue), durable=True, arguments=queue_arguments(queue, prioritised=True))
    for n in range(3):
        channel.basic_publish("", holding_queue(queue), b"%d" % n, PERSISTENT, mandatory=True)

    declare_topology(connection.channel(), (queue,), prioritised=(queue,), migrates=True)

    connection.close()
    assert bodies_in(servers, queue) == [b"0", b"1", b"2"]
