"""A bounded number of places per key, in one gateway process: event streams per owner, uploads in
flight. A place is taken before the work starts (so that a refusal costs nothing: an upload's body
is not read) and given back, once, however the work ends."""

import collections
import functools
import threading
from collections.abc import Callable, Hashable

EVERYONE = "*"


class Places:
    def __init__(self, limit: int):
        self.limit = limit
        self._taken: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def take(self, key: Hashable = EVERYONE) -> Callable[[], None] | None:
        """One of `key`'s places, as the function that gives it back; None when all are taken."""
        with self._lock:
            if self._taken[key] >= self.limit:
                return None
            self._taken[key] += 1
        given_back = threading.Event()

        def give_back() -> None:
            with self._lock:
                if not given_back.is_set():
                    given_back.set()
                    self._taken[key] -= 1
                    if not self._taken[key]:
                        del self._taken[key]

        return give_back


def in_one_of(places: Callable[[], Places], refused: Callable[[int], object]):
    """A view that runs only in one of the places (for everyone) and gives it back when it returns;
    without a free place it answers refused(limit)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            taken = places()
            give_back = taken.take()
            if give_back is None:
                return refused(taken.limit)
            try:
                return view(*args, **kwargs)
            finally:
                give_back()

        return wrapper

    return decorate
