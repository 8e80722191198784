"""Deleting a job with its files, in an order that no crash can make visible to its owner.

1. hide: `deleted_at` is set in one conditional update. From then on the job is gone for its owner
   (GET /jobs, GET /jobs/<id>, the download) and for the converter, and only one deleter holds it.
2. its files go: the video, the MP3, and any MP3 a conversion racing with the deletion stored.
3. its document goes.

Each step can be repeated: a file or document already gone is fine. A crash after step 1 leaves a
hidden job that nobody sees, which the converter's cleanup finds (`Jobs.hidden`) and finishes. A
crash can never leave a job that shows up and whose MP3 is missing.
"""

import logging

from pymongo.database import Database
from pymongo.errors import PyMongoError

from common import storage
from common.jobs import Jobs

log = logging.getLogger(__name__)


class JobDeletion:
    def __init__(self, db: Database):
        self._jobs = Jobs(db)
        self._videos = storage.bucket(db, storage.VIDEOS)
        self._mp3s = storage.bucket(db, storage.MP3S)
        self._mp3_files = db[f"{storage.MP3S}.files"]

    def delete_owned(self, job_id, owner: str) -> bool:
        """Delete one of the owner's jobs; False when the owner has no such job."""
        return self._delete(self._jobs.hide(job_id, owner))

    def delete_all_owned(self, owner: str) -> int:
        """Delete every job of the owner with its files (their account is going); how many went."""
        deleted = 0
        for job_id in self._jobs.ids_owned_by(owner):
            hidden = self._jobs.hide(job_id, owner) or self._jobs.get_hidden(job_id)
            if hidden is not None:
                self.finish(hidden)  # unlike one job's deletion, the whole account's must be done or fail loudly
                deleted += 1
        return deleted

    def delete(self, job: dict) -> bool:
        """Delete a job whatever its owner (retention); False when another deleter has it already."""
        return self._delete(self._jobs.hide(job["_id"]))

    def _delete(self, hidden: dict | None) -> bool:
        if hidden is None:
            return False
        try:
            self.finish(hidden)
        except PyMongoError as error:
            # Hidden is deleted, as far as anyone can see; the converter's cleanup finishes the rest.
            log.warning("job hidden, its files not yet deleted",
                        extra={"job_id": str(hidden["_id"]), "error": repr(error)})
        return True

    def finish(self, job: dict) -> None:
        """Steps 2 and 3 for a hidden job."""
        storage.delete_file(self._videos, job.get("video_fid"))
        self.delete_mp3s(str(job["_id"]), job.get("mp3_fid"))
        self._jobs.delete(job["_id"])
        log.info("job deleted", extra={"job_id": str(job["_id"])})

    def delete_mp3s(self, job_id: str, recorded=None) -> None:
        """The MP3 recorded on the job, and any other one stored for it (an attempt that died, or
        a conversion that finished while the job was being deleted)."""
        storage.delete_file(self._mp3s, recorded)
        for stored in list(self._mp3_files.find({"metadata.job_id": job_id}, {"_id": 1})):
            storage.delete_file(self._mp3s, stored["_id"])
