"""Moving an existing queue over to new arguments (the video queue to priorities), its messages kept.

RabbitMQ refuses to declare an existing queue with other arguments (PRECONDITION_FAILED), and no
policy may add x-max-priority, so the queue is rebuilt under the same name: under a lock (an exclusive
queue, so that consumers starting together migrate once), its messages move one by one into
`<queue>.migrating`, declared with the new arguments; the old queue is deleted once empty and declared
anew, and the messages move back, in their order, with their properties and headers (x-death too).

Each message is published with the broker's confirm before its original is acked: a crash in the
middle loses nothing (at worst one message is there twice, which the converter takes like any
redelivery of a job), and the next consumer to start finishes the move (finish_interrupted). A
publisher publishing in the moment the queue is gone is refused (mandatory), and its upload answers
503 with nothing stored. What a moved message loses is its redelivered flag.
"""

import contextlib
import logging
import time

from pika.exceptions import AMQPChannelError, ChannelClosedByBroker

log = logging.getLogger(__name__)

NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
LOCK_WAIT_SECONDS = 120


def holding_queue(queue: str) -> str:
    return f"{queue}.migrating"


def lock_queue(queue: str) -> str:
    return f"{queue}.migration-lock"


def declares(connection, queue: str, arguments: dict) -> bool:
    """Declare `queue` durable with `arguments`; False when it exists with other ones. (A refusal
    closes the channel it came on, so the declaration has a channel of its own.)"""
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
    except ChannelClosedByBroker as error:
        if error.reply_code != PRECONDITION_FAILED:
            raise
        return False
    channel.close()
    return True


def migrate(connection, queue: str, arguments: dict) -> None:
    """Rebuild `queue` with `arguments`, keeping its messages (see the module's docstring)."""
    with _locked(connection, queue):
        if not declares(connection, queue, arguments):  # else another consumer has just done it
            log.warning("moving the queue over to new arguments", extra={"queue": queue, "arguments": arguments})
            channel = _confirming(connection)
            channel.queue_declare(holding_queue(queue), durable=True, arguments=arguments)
            while True:
                moved = _move(channel, queue, holding_queue(queue))
                try:
                    channel.queue_delete(queue, if_empty=True)
                    break
                except ChannelClosedByBroker as error:  # a message came in meanwhile: move it too
                    if error.reply_code != PRECONDITION_FAILED:
                        raise
                    channel = _confirming(connection)
            channel.queue_declare(queue, durable=True, arguments=arguments)
            channel.close()
            log.warning("queue rebuilt", extra={"queue": queue, "messages": moved})
        _move_back(connection, queue)


def finish_interrupted(connection, queue: str) -> None:
    """Move back what a migration that died left in `<queue>.migrating`, if anything."""
    probe = connection.channel()
    if not _exists(probe, holding_queue(queue)):
        return
    probe.close()
    with _locked(connection, queue):
        _move_back(connection, queue)


def _exists(channel, queue: str) -> bool:
    """Whether QUEUE exists (a passive declare: when it does not, the broker closes CHANNEL)."""
    try:
        channel.queue_declare(queue, passive=True)
    except ChannelClosedByBroker as error:
        if error.reply_code != NOT_FOUND:
            raise
        return False
    return True


def _move_back(connection, queue: str) -> None:
    channel = _confirming(connection)
    if not _exists(channel, holding_queue(queue)):
        return
    _move(channel, holding_queue(queue), queue)
    channel.queue_delete(holding_queue(queue), if_empty=True)
    channel.close()


def _move(channel, source: str, target: str) -> int:
    """Every ready message of `source` into `target`, in order; each confirmed before its original goes."""
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source)
        if method is None:
            return moved
        channel.basic_publish("", target, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1


def _confirming(connection):
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


@contextlib.contextmanager
def _locked(connection, queue: str):
    """Hold `<queue>.migration-lock`, an exclusive queue: only one connection at a time can declare it."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        channel = connection.channel()
        try:
            channel.queue_declare(lock_queue(queue), exclusive=True, auto_delete=True)
            break
        except ChannelClosedByBroker as error:
            if error.reply_code != RESOURCE_LOCKED:
                raise
            if time.monotonic() > deadline:
                raise AMQPChannelError(f"another consumer has been migrating {queue} for {LOCK_WAIT_SECONDS} s") \
                    from None
            connection.sleep(0.5)
    try:
        yield
    finally:
        if channel.is_open:
            with contextlib.suppress(AMQPChannelError):
                channel.queue_delete(lock_queue(queue))
                channel.close()
