"""The jobs collection: one document per upload, updated by each service as the job moves on.

Every transition is a single conditional update, so that redelivered messages and concurrent
workers can never move a job backwards or finish it twice.
"""

from datetime import UTC, datetime
from enum import StrEnum

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from common import metrics
from common.broker import Reject, decode
from common.storage import object_id


class Status(StrEnum):
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"


FINAL = (Status.DONE, Status.FAILED)


def _now() -> datetime:
    return datetime.now(UTC)


def mp3_name(upload_name: str) -> str:
    """What a job's MP3 is called: the upload's name with .mp3 for its extension."""
    stem = upload_name.rsplit(".", 1)[0] if "." in upload_name else upload_name
    return f"{stem or 'audio'}.mp3"


def public_view(job: dict) -> dict:
    """A job as the gateway shows it to its owner."""
    return {
        "job_id": str(job["_id"]),
        "status": job["status"],
        "progress": job["progress"],
        "mp3_fid": str(job["mp3_fid"]) if job.get("mp3_fid") else None,
        "error": job.get("error"),
        "filename": job["filename"],
        "created_at": job["created_at"].isoformat(),
        "updated_at": job["updated_at"].isoformat(),
    }


class Jobs:
    def __init__(self, db: Database):
        self._jobs = db["jobs"]

    def ensure_indexes(self) -> None:
        self._jobs.create_index([("owner", 1), ("created_at", DESCENDING)])
        self._jobs.create_index("mp3_fid", sparse=True)

    def create(self, owner: str, filename: str, video_fid: ObjectId) -> dict:
        now = _now()
        job = {
            "owner": owner,
            "filename": filename,
            "video_fid": video_fid,
            "mp3_fid": None,
            "status": Status.QUEUED.value,
            "progress": 0,
            "error": None,
            "attempts": 0,
            "notified_at": None,
            "created_at": now,
            "updated_at": now,
        }
        job["_id"] = self._jobs.insert_one(job).inserted_id
        return job

    def delete(self, job_id) -> None:
        self._jobs.delete_one({"_id": object_id(job_id)})

    def get(self, job_id) -> dict | None:
        oid = object_id(job_id)
        return self._jobs.find_one({"_id": oid}) if oid else None

    def of_message(self, body: bytes) -> dict:
        """The job a queue message is about; a malformed message or an unknown job is rejected."""
        job_id = decode(body)["job_id"]
        job = self.get(job_id)
        if job is None:
            raise Reject(f"unknown job {job_id!r}")
        return job

    def get_owned(self, job_id, owner: str) -> dict | None:
        oid = object_id(job_id)
        return self._jobs.find_one({"_id": oid, "owner": owner}) if oid else None

    def list_owned(self, owner: str, limit: int = 100) -> list[dict]:
        cursor = self._jobs.find({"owner": owner}).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return list(cursor.limit(limit))

    def find_by_mp3(self, mp3_fid, owner: str) -> dict | None:
        oid = object_id(mp3_fid)
        return self._jobs.find_one({"mp3_fid": oid, "owner": owner}) if oid else None

    def start_attempt(self, job_id) -> dict | None:
        """Count one more delivery of an unfinished job and mark it converting; None if it is final."""
        return self._jobs.find_one_and_update(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}},
            {"$inc": {"attempts": 1},
             "$set": {"status": Status.CONVERTING.value, "progress": 0, "updated_at": _now()}},
            return_document=ReturnDocument.AFTER,
        )

    def set_progress(self, job_id, percent: int) -> None:
        self._jobs.update_one(
            {"_id": object_id(job_id), "status": Status.CONVERTING.value, "progress": {"$lt": percent}},
            {"$set": {"progress": percent, "updated_at": _now()}},
        )

    def finish(self, job_id, mp3_fid: ObjectId) -> bool:
        """Mark done with this MP3; False when the job was already final (another worker won)."""
        result = self._jobs.update_one(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}},
            {"$set": {"status": Status.DONE.value, "progress": 100, "mp3_fid": mp3_fid,
                      "error": None, "updated_at": _now()}},
        )
        if result.modified_count == 1:
            metrics.JOBS_FINISHED.labels(Status.DONE.value).inc()
        return result.modified_count == 1

    def fail(self, job_id, reason: str) -> None:
        result = self._jobs.update_one(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}},
            {"$set": {"status": Status.FAILED.value, "error": reason, "updated_at": _now()}},
        )
        if result.modified_count == 1:
            metrics.JOBS_FINISHED.labels(Status.FAILED.value).inc()

    def claim_notification(self, job_id) -> dict | None:
        """Take the right to notify a done job; None when it was already taken."""
        return self._jobs.find_one_and_update(
            {"_id": object_id(job_id), "status": Status.DONE.value, "notified_at": None},
            {"$set": {"notified_at": _now()}},
            return_document=ReturnDocument.AFTER,
        )

    def release_notification(self, job_id) -> None:
        self._jobs.update_one({"_id": object_id(job_id)}, {"$set": {"notified_at": None}})
