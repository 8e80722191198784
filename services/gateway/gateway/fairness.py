"""Fair when busy: the priority each job's message gets on the video queue (a priority queue).

A user's first job waiting goes before every other user's second: a job's priority falls with the
number of its owner's jobs already queued or converting (MAX_PRIORITY for the first, one less for
each, down to 1). One user's own jobs still run in the order they were sent: a job never gets a
higher priority than its owner's jobs still queued before it (they would otherwise be overtaken
once earlier ones finish and the count falls again). Within a priority the queue is first in, first
out, and a message handed back keeps its place.

What waits is only ever a job of a user with more jobs ahead than another's: under a load that
keeps the converters busy with first jobs alone, a heavy user's later ones wait until it eases.
"""

from common.broker import MAX_PRIORITY


def priority(active: int, lowest_queued: int | None) -> int:
    """The priority of an owner's next job, who has `active` jobs queued or converting, the lowest
    priority among those queued being `lowest_queued` (None when none is queued)."""
    by_rank = max(1, MAX_PRIORITY - active)
    return by_rank if lowest_queued is None else min(by_rank, lowest_queued)
