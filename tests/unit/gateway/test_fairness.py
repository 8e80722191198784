"""Fair when busy: the order in which the video queue hands out the jobs the gateway publishes.

The queue is modelled as RabbitMQ's priority queue delivers (highest priority first, first in first
out within one); the integration suite checks the real broker does so (tests/integration/test_fairness.py).
"""

import pytest
from bson import ObjectId

from common.broker import MAX_PRIORITY
from common.jobs import Jobs
from gateway.fairness import priority
from tests.unit.gateway.calls import upload
from tests.unit.gateway_double import ALICE_TOKEN, BOB_TOKEN


class PriorityQueue:
    """What the converter is handed next, from what the gateway published so far."""

    def __init__(self, publisher):
        self._publisher = publisher
        self._taken: set[int] = set()

    def take(self) -> dict:
        waiting = [(-(self._publisher.priorities[i] or 0), i) for i in range(len(self._publisher.published))
                   if i not in self._taken]
        _, index = min(waiting)
        self._taken.add(index)
        return self._publisher.published[index][1]


def uploaded(client, video, token: str, name: str) -> None:
    response = upload(client, video, name, token)
    assert response.status_code == 202, response.get_data(as_text=True)


def convert_next(queue: PriorityQueue, jobs: Jobs) -> str:
    """The converter's part: take the next message, convert its job to the end; the job's filename."""
    message = queue.take()
    jobs.start_attempt(message["job_id"])
    assert jobs.finish(message["job_id"], ObjectId())
    return jobs.get(message["job_id"])["filename"]


@pytest.mark.parametrize(("active", "lowest_queued", "expected"), [
    (0, None, MAX_PRIORITY),  # a user's first job: the top
    (1, None, MAX_PRIORITY - 1),  # one converting, none queued
    (MAX_PRIORITY + 3, None, 1),  # never below 1 (0 is a message without priority)
    (1, MAX_PRIORITY - 3, MAX_PRIORITY - 3),  # never above the owner's jobs still queued
])
def test_the_rule(active, lowest_queued, expected):
    assert priority(active, lowest_queued) == expected


def test_another_users_first_job_does_not_wait_behind_a_users_second(client, memory_db, fake_publisher, video):
    queue = PriorityQueue(fake_publisher)
    for index in range(1, 6):
        uploaded(client, video, ALICE_TOKEN, f"alice-{index}.mp4")
    uploaded(client, video, BOB_TOKEN, "bob-1.mp4")
    jobs = Jobs(memory_db)
    order = [convert_next(queue, jobs) for _ in range(6)]
    assert order == ["alice-1.mp4", "bob-1.mp4", "alice-2.mp4", "alice-3.mp4", "alice-4.mp4", "alice-5.mp4"]


def test_a_user_alone_gets_every_job_done_in_the_order_sent(client, memory_db, fake_publisher, video):
    """Also when jobs finish between uploads, so that the count of jobs ahead falls again (the fourth
    upload sees one job ahead, the third, queued at the third priority: it must not go before it)."""
    queue, jobs = PriorityQueue(fake_publisher), Jobs(memory_db)
    sent, done = [], []
    for index in range(1, 10):
        sent.append(f"alice-{index}.mp4")
        uploaded(client, video, ALICE_TOKEN, sent[-1])
        if index % 3 == 0:  # two of the queued ones converted meanwhile
            done += [convert_next(queue, jobs) for _ in range(2)]
    done += [convert_next(queue, jobs) for _ in range(len(sent) - len(done))]
    assert done == sent


def test_a_user_who_has_caught_up_starts_at_the_top_again(client, memory_db, fake_publisher, video):
    queue, jobs = PriorityQueue(fake_publisher), Jobs(memory_db)
    for index in range(1, 4):
        uploaded(client, video, ALICE_TOKEN, f"alice-{index}.mp4")
    for _ in range(3):
        convert_next(queue, jobs)
    uploaded(client, video, ALICE_TOKEN, "alice-4.mp4")
    assert fake_publisher.priorities == [MAX_PRIORITY, MAX_PRIORITY - 1, MAX_PRIORITY - 2, MAX_PRIORITY]
