"""The converter's cleanup: jobs untouched for RETENTION_DAYS go with their files, on a timer, and
several converters sweeping at once never fight nor leave anything half-deleted that a user could see."""

import io
import os
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError

from common import storage
from common.jobs import Jobs
from common.removal import JobDeletion
from common.settings import ConverterSettings, load
from converter.cleanup import Cleanup

OWNER = "alice@example.com"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def cleanup(db, **settings) -> Cleanup:
    return Cleanup(load(ConverterSettings, rabbitmq_url="amqp://guest:guest@127.0.0.1/", mongodb_uri="mongodb://unused/",
                        **settings), db)


def stored_counts(db) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in
            ("jobs", "videos.files", "videos.chunks", "mp3s.files", "mp3s.chunks")}


def job_with_files(db, age: timedelta, status: str = "done", owner: str = OWNER) -> dict:
    """A job last changed `age` before NOW, with a stored video and (when done) an MP3."""
    jobs = Jobs(db)
    # Two chunks: one full, one of a byte.
    video = b"v" * (storage.CHUNK_BYTES[storage.VIDEOS] + 1)
    video_fid = storage.bucket(db, storage.VIDEOS).upload_from_stream("v.mp4", io.BytesIO(video))
    job = jobs.create(owner, "v.mp4", video_fid)
    jobs.start_attempt(job["_id"])
    if status == "done":
        mp3_fid = storage.bucket(db, storage.MP3S).upload_from_stream(
            "v.mp3", io.BytesIO(b"m" * 300_000), metadata={"job_id": str(job["_id"])})
        jobs.finish(job["_id"], mp3_fid)
    elif status == "failed":
        jobs.fail(job["_id"], "The video has no audio track.")
    db["jobs"].update_one({"_id": job["_id"]}, {"$set": {"updated_at": NOW - age}})
    return jobs.get(job["_id"])


def visible(db, job: dict) -> bool:
    """Whether its owner sees the job in any way: itself, in the list, or its MP3."""
    jobs = Jobs(db)
    return bool(jobs.get_owned(job["_id"], job["owner"])
                or [j for j in jobs.list_owned(job["owner"], 100) if j["_id"] == job["_id"]]
                or (job.get("mp3_fid") and jobs.find_by_mp3(job["mp3_fid"], job["owner"])))


def test_jobs_older_than_retention_go_with_their_files_and_newer_ones_stay(memory_db):
    old = [job_with_files(memory_db, timedelta(days=8)), job_with_files(memory_db, timedelta(days=30), "failed")]
    young = [job_with_files(memory_db, timedelta(days=6)), job_with_files(memory_db, timedelta(hours=1), "failed")]
    before = stored_counts(memory_db)

    assert cleanup(memory_db, retention_days=7).sweep(NOW) == 2

    after = stored_counts(memory_db)
    assert before == {"jobs": 4, "videos.files": 4, "videos.chunks": 8, "mp3s.files": 2, "mp3s.chunks": 4}
    assert after == {"jobs": 2, "videos.files": 2, "videos.chunks": 4, "mp3s.files": 1, "mp3s.chunks": 2}
    assert not any(visible(memory_db, job) for job in old)
    assert all(visible(memory_db, job) for job in young)


def test_retention_days_zero_keeps_everything(memory_db):
    job_with_files(memory_db, timedelta(days=3650))
    before = stored_counts(memory_db)
    assert cleanup(memory_db, retention_days=0).sweep(NOW) == 0
    assert stored_counts(memory_db) == before


def test_age_counts_from_the_last_change_so_a_job_being_converted_now_is_left_alone(memory_db):
    converting = job_with_files(memory_db, timedelta(seconds=1), "converting")  # it reported progress just now
    memory_db["jobs"].update_one({"_id": converting["_id"]}, {"$set": {"created_at": NOW - timedelta(days=30)}})
    cleanup(memory_db, retention_days=1).sweep(NOW)
    assert visible(memory_db, converting)
    assert stored_counts(memory_db)["videos.files"] == 1


def test_two_converters_sweeping_at_once_delete_each_job_once(memory_db):
    for _ in range(6):
        job_with_files(memory_db, timedelta(days=9))
    first, second = cleanup(memory_db, retention_days=7), cleanup(memory_db, retention_days=7)
    real = Jobs.untouched_since
    counted = {}

    def second_sweeps_in_between(jobs, moment):
        expired = list(real(jobs, moment))
        if not counted:  # the first sweep has its list; the second runs to its end meanwhile
            counted["second"] = None
            counted["second"] = second.sweep(NOW)
        return expired

    with mock.patch.object(Jobs, "untouched_since", second_sweeps_in_between):
        counted["first"] = first.sweep(NOW)

    assert counted == {"second": 6, "first": 0}
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


class Crash(BaseException):
    """The process dies here."""


def test_a_crash_in_the_middle_of_a_sweep_leaves_nothing_visible_and_the_next_sweep_finishes(memory_db):
    jobs = [job_with_files(memory_db, timedelta(days=10)) for _ in range(4)]
    real = JobDeletion.finish
    finished = []

    def dies_after_two(removal, job):
        if len(finished) == 2:
            storage.delete_file(removal._videos, job["video_fid"])  # half-way through the third
            raise Crash
        real(removal, job)
        finished.append(job["_id"])

    with mock.patch.object(JobDeletion, "finish", dies_after_two), pytest.raises(Crash):
        cleanup(memory_db, retention_days=7).sweep(NOW)

    hidden = [job for job in jobs if not visible(memory_db, job)]
    shown = [job for job in jobs if visible(memory_db, job)]
    assert len(hidden) == 3 and len(shown) == 1
    for job in shown:  # what a user can still see is whole: its video and MP3 are there
        assert storage.bucket(memory_db, storage.MP3S).open_download_stream(job["mp3_fid"]).read()
        assert storage.bucket(memory_db, storage.VIDEOS).open_download_stream(job["video_fid"]).read()

    assert cleanup(memory_db, retention_days=7).sweep(NOW) == 2  # the half-deleted one, and the last
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


def test_the_cleanup_sweeps_at_start_and_then_on_its_interval_until_stopped(memory_db):
    sweeps = threading.Semaphore(0)
    task = cleanup(memory_db, cleanup_interval_seconds=1)
    stop = threading.Event()
    with mock.patch.object(Cleanup, "sweep", side_effect=lambda: sweeps.release()):
        thread = threading.Thread(target=task.run, args=(stop,))
        thread.start()
        assert sweeps.acquire(timeout=0.5), "no sweep at start"
        assert sweeps.acquire(timeout=3), "no sweep after the interval"
        stop.set()
        thread.join(timeout=3)
    assert not thread.is_alive()


def test_a_sweep_that_cannot_reach_storage_waits_for_the_next_interval(memory_db, caplog):
    stop = threading.Event()
    calls = []

    def down():
        calls.append(1)
        stop.set()
        raise ServerSelectionTimeoutError("down")

    with mock.patch.object(Cleanup, "sweep", side_effect=down):
        cleanup(memory_db).run(stop)
    assert calls == [1]
    assert "cleanup failed" in caplog.text



def stored_file(db, bucket: str, age: timedelta, **metadata):
    fid = storage.bucket(db, bucket).upload_from_stream("f", io.BytesIO(b"x" * 1000), metadata=metadata)
    db[f"{bucket}.files"].update_one({"_id": fid}, {"$set": {"uploadDate": NOW - age}})
    return fid


def test_files_no_job_owns_go_an_hour_after_they_were_stored(memory_db):
    kept = job_with_files(memory_db, timedelta(days=1))  # its video and MP3 are owned
    gone_job = str(Jobs(memory_db).create(OWNER, "x.mp4", None)["_id"])
    Jobs(memory_db).delete(gone_job)
    crashed_upload = stored_file(memory_db, storage.VIDEOS, timedelta(hours=2), owner=OWNER)
    uploading_now = stored_file(memory_db, storage.VIDEOS, timedelta(minutes=1), owner=OWNER)
    mp3_of_a_deleted_job = stored_file(memory_db, storage.MP3S, timedelta(hours=2), job_id=gone_job)
    mp3_without_metadata = stored_file(memory_db, storage.MP3S, timedelta(days=2))

    cleanup(memory_db, retention_days=0).sweep(NOW)

    videos = {f["_id"] for f in memory_db["videos.files"].find()}
    mp3s = {f["_id"] for f in memory_db["mp3s.files"].find()}
    assert videos == {kept["video_fid"], uploading_now}
    assert mp3s == {kept["mp3_fid"]}
    assert crashed_upload not in videos and {mp3_of_a_deleted_job, mp3_without_metadata}.isdisjoint(mp3s)
    assert stored_counts(memory_db)["videos.chunks"] == 2 + 1  # the kept job's two chunks, and the upload's one


def test_deleting_an_account_takes_all_its_jobs_and_files_and_leaves_others_alone(memory_db):
    # What scripts/delete-user does after removing the account (auth.delete_user).
    mine = [job_with_files(memory_db, timedelta(hours=1)), job_with_files(memory_db, timedelta(days=1), "failed"),
            job_with_files(memory_db, timedelta(minutes=1), "converting")]
    Jobs(memory_db).hide(mine[1]["_id"])  # a deletion a crash interrupted: finished too
    theirs = job_with_files(memory_db, timedelta(hours=1), owner="bob@example.com")
    only_theirs = {"jobs": 1, "videos.files": 1, "videos.chunks": 2, "mp3s.files": 1, "mp3s.chunks": 2}

    assert JobDeletion(memory_db).delete_all_owned(OWNER) == 3
    assert stored_counts(memory_db) == only_theirs
    assert Jobs(memory_db).list_owned(OWNER, 100) == []
    assert visible(memory_db, theirs)
    assert JobDeletion(memory_db).delete_all_owned(OWNER) == 0  # again: nothing left, nothing breaks


def object_id_at(moment: datetime) -> ObjectId:
    """A fresh ObjectId made at `moment`, as pymongo makes one for a chunk or file when it writes it."""
    return ObjectId(ObjectId.from_datetime(moment).binary[:4] + os.urandom(8))


def chunks_without_file(db, bucket: str, started: timedelta, last_written: timedelta) -> ObjectId:
    """What an upload leaves when its process dies (OOM, SIGKILL): chunks, and no files document, which
    GridFS writes last. Its file id is made when the upload starts; each chunk's id when it is written."""
    file_id = object_id_at(NOW - started)
    moments = [NOW - started, NOW - (started + last_written) / 2, NOW - last_written]
    db[f"{bucket}.chunks"].insert_many([{"_id": object_id_at(moment), "files_id": file_id, "n": n, "data": b"x" * 100}
                                        for n, moment in enumerate(moments)])
    return file_id


@pytest.mark.parametrize("bucket", [storage.VIDEOS, storage.MP3S])
def test_chunks_of_an_upload_that_died_go_a_grace_period_after_its_last_chunk(memory_db, bucket):
    hours = timedelta(hours=1)
    died = chunks_without_file(memory_db, bucket, started=30 * hours, last_written=25 * hours)
    died_long_ago = chunks_without_file(memory_db, bucket, started=900 * hours, last_written=800 * hours)
    slow_but_alive = chunks_without_file(memory_db, bucket, started=30 * hours, last_written=timedelta(minutes=1))
    died_recently = chunks_without_file(memory_db, bucket, started=3 * hours, last_written=2 * hours)
    whole = object_id_at(NOW - 30 * hours)  # a file stored whole, whose job owns it
    storage.bucket(memory_db, bucket).upload_from_stream_with_id(whole, "f", io.BytesIO(b"x" * 1000))
    job_id = memory_db["jobs"].insert_one({"video_fid": whole, "status": "converting", "updated_at": NOW}).inserted_id
    memory_db[f"{bucket}.files"].update_one({"_id": whole}, {"$set": {"metadata": {"job_id": str(job_id)}}})

    cleanup(memory_db, retention_days=0, unfinished_upload_grace_hours=24).sweep(NOW)

    left = set(memory_db[f"{bucket}.chunks"].distinct("files_id"))
    assert {died, died_long_ago}.isdisjoint(left)
    assert {slow_but_alive, died_recently, whole} <= left
    assert memory_db[f"{bucket}.chunks"].count_documents({"files_id": slow_but_alive}) == 3
    assert storage.bucket(memory_db, bucket).open_download_stream(whole).read() == b"x" * 1000


def test_the_grace_for_unfinished_uploads_is_a_setting(memory_db):
    died = chunks_without_file(memory_db, storage.VIDEOS, started=timedelta(hours=5), last_written=timedelta(hours=3))
    cleanup(memory_db, retention_days=0, unfinished_upload_grace_hours=4).sweep(NOW)
    assert memory_db["videos.chunks"].count_documents({"files_id": died}) == 3
    cleanup(memory_db, retention_days=0, unfinished_upload_grace_hours=2).sweep(NOW)
    assert memory_db["videos.chunks"].count_documents({"files_id": died}) == 0
