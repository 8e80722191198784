"""The jobs collection: one document per upload, updated by each service as the job moves on.

Every transition is a single conditional update, so that redelivered messages and concurrent
workers can never move a job backwards or finish it twice.

A deleted job is first hidden (`deleted_at` set), then its files go, then its document
(common.removal). Every query here but `hidden` sees only jobs that are not hidden, so from the
moment of deletion no owner, download or conversion step finds the job any more.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from common import metrics
from common.handler import Reject, decode
from common.storage import object_id


class Status(StrEnum):
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"


FINAL = (Status.DONE, Status.FAILED)
# Jobs that are not being deleted. (`None` also matches documents from before the field existed.)
ALIVE = {"deleted_at": None}


# What deleting a job needs to know of it.
FILES = {"video_fid": 1, "mp3_fid": 1}


class JobGone(Exception):
    """A queue message names a job that no longer exists: its owner or the retention deleted it."""

    def __init__(self, job_id: str):
        super().__init__(f"job {job_id} no longer exists")
        self.job_id = job_id


def _now() -> datetime:
    """Now, to the millisecond as MongoDB stores it (so that a time read back equals the one written)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


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
        self._jobs.create_index([("owner", 1), ("created_at", DESCENDING), ("_id", DESCENDING)])
        self._jobs.create_index("mp3_fid", sparse=True)
        self._jobs.create_index("video_fid")
        self._jobs.create_index("updated_at")
        self._jobs.create_index("deleted_at", sparse=True)

    def create(self, owner: str, filename: str, video_fid: ObjectId, priority: int | None = None) -> dict:
        """A queued job; `priority` is its message's on the video queue (gateway.fairness)."""
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
            "deleted_at": None,
            "priority": priority,
            "created_at": now,
            "updated_at": now,
        }
        job["_id"] = self._jobs.insert_one(job).inserted_id
        return job

    def count_active(self, owner: str) -> int:
        """How many of the owner's jobs are queued or converting."""
        return self._jobs.count_documents(
            {"owner": owner, "status": {"$in": [Status.QUEUED.value, Status.CONVERTING.value]}, **ALIVE})

    def backlog(self, owner: str) -> tuple[int, int | None]:
        """How many of the owner's jobs are queued or converting, and the lowest queue priority among
        those queued (None when none is queued with one)."""
        active = self._jobs.count_documents(
            {"owner": owner, "status": {"$in": [Status.QUEUED.value, Status.CONVERTING.value]}, **ALIVE})
        lowest = self._jobs.find_one(
            {"owner": owner, "status": Status.QUEUED.value, "priority": {"$type": "int"}, **ALIVE},
            {"priority": 1}, sort=[("priority", 1)])
        return active, lowest["priority"] if lowest else None

    def delete(self, job_id) -> None:
        self._jobs.delete_one({"_id": object_id(job_id)})

    def get(self, job_id) -> dict | None:
        oid = object_id(job_id)
        return self._jobs.find_one({"_id": oid, **ALIVE}) if oid else None

    def of_message(self, body: bytes) -> dict:
        """The job a queue message is about. A malformed message is rejected; a job that no longer
        exists raises JobGone."""
        job_id = decode(body)["job_id"]
        if object_id(job_id) is None:
            raise Reject(f"malformed message: job_id {job_id!r} is not an id")
        job = self.get(job_id)
        if job is None:
            raise JobGone(job_id)
        return job

    def get_owned(self, job_id, owner: str) -> dict | None:
        oid = object_id(job_id)
        return self._jobs.find_one({"_id": oid, "owner": owner, **ALIVE}) if oid else None

    def list_owned(self, owner: str, limit: int, after: tuple[datetime, ObjectId] | None = None) -> list[dict]:
        """Up to `limit` of the owner's jobs, newest first: (created_at, _id) descending, starting
        after the job whose key is `after`. Jobs created meanwhile sort before it, so a walk through
        the pages neither repeats nor skips one."""
        query = {"owner": owner, **ALIVE}
        if after is not None:
            created_at, oid = after
            query["$or"] = [{"created_at": {"$lt": created_at}}, {"created_at": created_at, "_id": {"$lt": oid}}]
        cursor = self._jobs.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return list(cursor.limit(limit))

    def ids_owned_by(self, owner: str) -> list:
        """The ids of every job of the owner, hidden ones included."""
        return [job["_id"] for job in self._jobs.find({"owner": owner}, {"_id": 1})]

    def find_by_mp3(self, mp3_fid, owner: str) -> dict | None:
        oid = object_id(mp3_fid)
        return self._jobs.find_one({"mp3_fid": oid, "owner": owner, **ALIVE}) if oid else None

    def hide(self, job_id, owner: str | None = None) -> dict | None:
        """Start deleting a job: from now on only `hidden` finds it. None when there is no such job
        (of this owner), or another deletion has it already."""
        query = {"_id": object_id(job_id), **ALIVE}
        if owner is not None:
            query["owner"] = owner
        return self._jobs.find_one_and_update(query, {"$set": {"deleted_at": _now()}},
                                              return_document=ReturnDocument.AFTER)

    def get_hidden(self, job_id) -> dict | None:
        """A job whose deletion started and has not finished."""
        return self._jobs.find_one({"_id": object_id(job_id), "deleted_at": {"$type": "date"}}, FILES)

    def hidden(self) -> Iterator[dict]:
        """Jobs whose deletion started and has not finished (a crash, or one in progress now)."""
        return self._jobs.find({"deleted_at": {"$type": "date"}}, FILES)

    def existing(self, job_ids) -> set[str]:
        """Those of the ids whose job exists (hidden or not)."""
        oids = [oid for oid in map(object_id, job_ids) if oid is not None]
        return {str(job["_id"]) for job in self._jobs.find({"_id": {"$in": oids}}, {"_id": 1})}

    def recorded_videos(self, files: list[dict]) -> set:
        """The ids of those stored videos that a job records as its own."""
        fids = [f["_id"] for f in files]
        return {job["video_fid"] for job in self._jobs.find({"video_fid": {"$in": fids}}, {"video_fid": 1})}

    def untouched_since(self, moment: datetime) -> Iterator[dict]:
        """Jobs that have not changed since `moment`: for a finished job, finished before it."""
        return self._jobs.find({"updated_at": {"$lt": moment}, **ALIVE}, FILES)

    def start_attempt(self, job_id) -> dict | None:
        """Count one more delivery of an unfinished job and mark it converting; None if it is final (or gone)."""
        return self._jobs.find_one_and_update(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}, **ALIVE},
            {"$inc": {"attempts": 1},
             "$set": {"status": Status.CONVERTING.value, "progress": 0, "updated_at": _now()}},
            return_document=ReturnDocument.AFTER,
        )

    def set_progress(self, job_id, percent: int) -> bool:
        """Record progress (it never goes back); False when the job is no longer being converted
        here: deleted, or settled by another worker."""
        result = self._jobs.update_one(
            {"_id": object_id(job_id), "status": Status.CONVERTING.value, **ALIVE},
            {"$max": {"progress": percent}, "$set": {"updated_at": _now()}},
        )
        return result.matched_count == 1

    def finish(self, job_id, mp3_fid: ObjectId) -> bool:
        """Mark done with this MP3; False when the job was already final (another worker won) or deleted."""
        result = self._jobs.update_one(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}, **ALIVE},
            {"$set": {"status": Status.DONE.value, "progress": 100, "mp3_fid": mp3_fid,
                      "error": None, "updated_at": _now()}},
        )
        if result.modified_count == 1:
            metrics.JOBS_FINISHED.labels(Status.DONE.value).inc()
        return result.modified_count == 1

    def fail(self, job_id, reason: str) -> bool:
        """Mark failed with a reason for its owner; False when the job was already final or deleted."""
        result = self._jobs.update_one(
            {"_id": object_id(job_id), "status": {"$nin": list(FINAL)}, **ALIVE},
            {"$set": {"status": Status.FAILED.value, "error": reason, "updated_at": _now()}},
        )
        if result.modified_count == 1:
            metrics.JOBS_FINISHED.labels(Status.FAILED.value).inc()
        return result.modified_count == 1

    def claim_notification(self, job_id) -> dict | None:
        """Take the right to notify a done job; None when it was already taken."""
        return self._jobs.find_one_and_update(
            {"_id": object_id(job_id), "status": Status.DONE.value, "notified_at": None, **ALIVE},
            {"$set": {"notified_at": _now()}},
            return_document=ReturnDocument.AFTER,
        )

    def release_notification(self, job_id) -> None:
        self._jobs.update_one({"_id": object_id(job_id)}, {"$set": {"notified_at": None}})
