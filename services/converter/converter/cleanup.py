"""Storage that does not grow: on a timer, jobs untouched for RETENTION_DAYS go with their files.

The converter owns this because it owns what fills the storage: it writes the MP3s and removes
each video once its job is final. Every CLEANUP_INTERVAL_SECONDS (and once at start) a sweep

1. finishes the deletions that a crash left half-done (hidden jobs, common.removal),
2. deletes, as its owner would, every job that has not changed for RETENTION_DAYS days (for a
   finished job: since it finished), with its video and MP3. RETENTION_DAYS=0 keeps them for ever;
3. deletes files that belong to no job, an hour after they were stored: a gateway that died between
   storing a video and recording its job, a converter that died after storing an MP3 for a job
   deleted meanwhile. (Each is recorded within moments when nothing dies, so an hour is ample.)
4. deletes the chunks of uploads that never finished: a process that died while storing a file
   (OOM, SIGKILL in a rollout) leaves its chunks and no files document, which GridFS writes last, and
   so does a deletion that died between the two. They go UNFINISHED_UPLOAD_GRACE_HOURS after the
   last of them was written; an upload still in progress writes one at least every 8 MiB it receives
   (common.storage), so the grace must be longer than the slowest upload takes to send that.

Several converters may sweep at the same time: each expired job is taken by exactly one of them (the
conditional update that hides it), and every later step is idempotent, so two sweeps never fight
and a sweep that dies half-way is finished by the next one.
"""

import itertools
import logging
import threading
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common import storage
from common.jobs import Jobs
from common.removal import JobDeletion
from common.settings import ConverterSettings

log = logging.getLogger(__name__)

ORPHAN_GRACE = timedelta(hours=1)
BATCH = 500


class Cleanup:
    def __init__(self, settings: ConverterSettings, db: Database):
        self._settings = settings
        self._db = db
        self._jobs = Jobs(db)
        self._deletion = JobDeletion(db)

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
        now = now or datetime.now(UTC)
        finished = 0
        for job in list(self._jobs.hidden()):
            self._deletion.finish(job)
            finished += 1
        expired = 0
        if self._settings.retention_days:
            cutoff = now - timedelta(days=self._settings.retention_days)
            expired = sum(self._deletion.delete(job) for job in list(self._jobs.untouched_since(cutoff)))
        orphans = self._delete_orphans(storage.VIDEOS, now - ORPHAN_GRACE, self._jobs.recorded_videos)
        orphans += self._delete_orphans(storage.MP3S, now - ORPHAN_GRACE, self._jobs_of_mp3s)
        last_written = now - timedelta(hours=self._settings.unfinished_upload_grace_hours)
        unfinished = sum(self._delete_unfinished(bucket, last_written) for bucket in (storage.VIDEOS, storage.MP3S))
        if finished or expired or orphans or unfinished:
            log.info("cleanup", extra={"expired_jobs": expired, "half_deleted_jobs_finished": finished,
                                       "orphan_files": orphans, "unfinished_uploads": unfinished})
        return finished + expired

    def _delete_orphans(self, bucket: str, stored_before: datetime, owned) -> int:
        """Delete the files of `bucket` stored before that no job owns; owned(files) names those a job owns."""
        files = self._db[f"{bucket}.files"].find({"uploadDate": {"$lt": stored_before}}, {"metadata": 1})
        deleted = 0
        while batch := list(itertools.islice(files, BATCH)):
            keep = owned(batch)
            for orphan in (f["_id"] for f in batch if f["_id"] not in keep):
                storage.delete_file(storage.bucket(self._db, bucket), orphan)
                deleted += 1
        return deleted

    def _delete_unfinished(self, bucket: str, written_before: datetime) -> int:
        """Delete the chunks of each file of `bucket` that has no files document and whose last chunk
        was written before that moment. Ids are ObjectIds, made as each is written: a file's id tells
        when its upload started (only those started before are looked at), a chunk's when it was written."""
        chunks, files = self._db[f"{bucket}.chunks"], self._db[f"{bucket}.files"]
        started = chunks.aggregate([  # one entry per file, from the (files_id, n) index GridFS makes
            {"$match": {"files_id": {"$lt": ObjectId.from_datetime(written_before)}}},
            {"$sort": {"files_id": 1, "n": 1}},
            {"$group": {"_id": "$files_id"}},
        ])
        deleted = 0
        while batch := [entry["_id"] for entry in itertools.islice(started, BATCH)]:
            whole = {f["_id"] for f in files.find({"_id": {"$in": batch}}, {"_id": 1})}
            for file_id in (fid for fid in batch if fid not in whole):
                last = chunks.find_one({"files_id": file_id}, {"_id": 1}, sort=[("n", DESCENDING)])
                if last is not None and last["_id"].generation_time < written_before:
                    chunks.delete_many({"files_id": file_id})
                    deleted += 1
        return deleted

    def _jobs_of_mp3s(self, files: list[dict]) -> set:
        """The MP3s whose job (named in their metadata) still exists."""
        job_of = {f["_id"]: str((f.get("metadata") or {}).get("job_id")) for f in files}
        existing = self._jobs.existing(set(job_of.values()))
        return {fid for fid, job_id in job_of.items() if job_id in existing}
