"""Storage that does not grow: on a timer, jobs untouched for RETENTION_DAYS go with their files.

The converter owns this because it owns what fills the storage: it writes the MP3s and removes
each video once its job is final. Every CLEANUP_INTERVAL_SECONDS (and once at start) a sweep

1. finishes the deletions that a crash left half-done (hidden jobs, common.removal), then
2. deletes, as its owner would, every job that has not changed for RETENTION_DAYS days (for a
   finished job: since it finished), with its video and MP3. RETENTION_DAYS=0 keeps them for ever.

Several converters may sweep at the same time: each expired job is taken by exactly one of them (the
conditional update that hides it), and every later step is idempotent, so two sweeps never fight
and a sweep that dies half-way is finished by the next one.
"""

import logging
import threading
from datetime import UTC, datetime, timedelta

from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.jobs import Jobs
from common.removal import Removal
from common.settings import ConverterSettings

log = logging.getLogger(__name__)


class Cleanup:
    def __init__(self, settings: ConverterSettings, db: Database):
        self._settings = settings
        self._jobs = Jobs(db)
        self._removal = Removal(db)

    def run(self, stop: threading.Event) -> None:
        """Sweep now, then every CLEANUP_INTERVAL_SECONDS, until `stop` is set."""
        while not stop.is_set():
            try:
                self.sweep()
            except PyMongoError as error:
                log.warning("cleanup failed; trying again at the next interval", extra={"error": repr(error)})
            stop.wait(self._settings.cleanup_interval_seconds)

    def sweep(self, now: datetime | None = None) -> int:
        """One pass; returns how many jobs it deleted."""
        finished = 0
        for job in list(self._jobs.hidden()):
            self._removal.finish(job)
            finished += 1
        expired = 0
        if self._settings.retention_days:
            cutoff = (now or datetime.now(UTC)) - timedelta(days=self._settings.retention_days)
            expired = sum(self._removal.delete(job) for job in list(self._jobs.untouched_since(cutoff)))
        if finished or expired:
            log.info("cleanup", extra={"expired_jobs": expired, "half_deleted_jobs_finished": finished})
        return finished + expired
