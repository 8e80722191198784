"""Jobs recorded before jobs were keyed by account id: their owner is an e-mail address.

An address outlives its account (delete-user, then create-user with the same address), so such a job
cannot simply go to whoever has the address now. It goes to the account that had the address when the
job was made: the account that now has it, if the job is no older than the account (auth's /validate
says when the account was made). A job older than the account was its predecessor's: delete-user
removes it (it looks up jobs by address too), retention otherwise.

This runs at each account's first request to this process, not at start-up: only auth knows when an
account was made. It is idempotent; an account with no such job costs one indexed query per process
and hour.
"""

import threading
from datetime import UTC, datetime

from cachetools import TTLCache

from common.jobs import Jobs

REMEMBERED_ACCOUNTS = 10_000
REMEMBER_SECONDS = 3600


class LegacyJobs:
    def __init__(self, jobs: Jobs):
        self._jobs = jobs
        self._adopted: TTLCache = TTLCache(REMEMBERED_ACCOUNTS, REMEMBER_SECONDS)
        self._lock = threading.Lock()

    def adopt(self, claims: dict) -> None:
        """Give the caller's account the jobs recorded under its address since the account was made."""
        account_id, created = claims["uid"], claims.get("account_created_at")
        with self._lock:
            if created is None or account_id in self._adopted:
                return
        self._jobs.adopt(claims["sub"], account_id, datetime.fromtimestamp(created, UTC))
        with self._lock:
            self._adopted[account_id] = True
