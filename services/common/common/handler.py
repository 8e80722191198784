"""The contract between a consumer and its handler: what a handler gets (a Delivery, and an event that
asks it to give up early) and what it answers (an Outcome: ack with the next step's messages, reject
into the dead-letter queue, or hand back; and any tidying up that can wait until it is settled).
common.consumer carries out the Outcome; the services' handlers (converter.handler,
notification.handler) only decide it.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Action(Enum):
    ACK = "ack"
    REJECT = "reject"  # dead-letter it: it can never succeed
    REQUEUE = "requeue"  # hand it back: it was not done, another try may succeed


@dataclass(frozen=True)
class Outcome:
    action: Action
    # Messages to publish (queue, body) before the delivery is acked: the next step's work.
    publish: tuple[tuple[str, dict], ...] = field(default=())
    reason: str = ""
    # Work that no one waits for, done once the delivery is settled (its messages sent): kept off the
    # path to the user's result. If the worker dies first, the redelivery is the handler's to tidy up.
    then: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def ack(cls, *publish: tuple[str, dict], then: Callable[[], None] | None = None) -> "Outcome":
        return cls(Action.ACK, publish, then=then)

    @classmethod
    def reject(cls, reason: str) -> "Outcome":
        return cls(Action.REJECT, reason=reason)

    @classmethod
    def requeue(cls, reason: str) -> "Outcome":
        return cls(Action.REQUEUE, reason=reason)


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered with this reason."""


def decode(body: bytes) -> dict:
    """A job message ({"job_id": ..., ...}); anything else is rejected."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Reject("malformed message: not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("job_id"), str):
        raise Reject("malformed message: no job_id")
    return message

@dataclass(frozen=True)
class Delivery:
    body: bytes
    redelivered: bool


# A handler gets the delivery and an event that is set when it should give up early
# (shutdown, or the connection that delivered the message is gone).
Handler = Callable[[Delivery, threading.Event], Outcome]
