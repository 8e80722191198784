"""One video message: fetch the video, convert it, store the MP3, finish the job, announce it.

Idempotent: a redelivered message for a finished job only announces the existing MP3 again, and
an MP3 left by an attempt that died is removed before the next attempt stores its own. MongoDB
down for longer than a few retries is an outage, not a bad file: the message is handed back and
the job converted once storage answers again (each attempt counts towards MAX_ATTEMPTS).

Deletion wins: when the job is deleted (by its owner, or by retention) before or during its
conversion, ffmpeg is stopped at its next progress report, no MP3 stays stored (one that a
conversion stored in the race is removed), and the message is acked: nothing is left to do, so it
is neither handed back nor dead-lettered.

The video reaches ffmpeg straight from GridFS through a pipe when its container can be read front
to back (converter.streamable), and through a temp file otherwise.

Storage does not grow: unless KEEP_VIDEOS is true, the video is removed once its job is final (the
MP3 stored, recorded and announced, or the job failed).
"""

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

from gridfs.errors import NoFile
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, PyMongoError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from common import metrics, storage, telemetry
from common.handler import Delivery, Outcome
from common.jobs import FINAL, JobGone, Jobs, Status, mp3_name
from common.removal import JobDeletion
from common.settings import ConverterSettings
from converter import streamable
from converter.ffmpeg import Cancelled, ConversionFailed, convert

log = logging.getLogger(__name__)

COPY_CHUNK = 1024 * 1024  # the MP3's read size, as it is stored

# Transient storage errors: a few tries with backoff, then the job fails with the reason.
storage_retry = retry(
    retry=retry_if_exception_type(PyMongoError),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.5, max=4),
    reraise=True,
)


class Converter:
    def __init__(self, settings: ConverterSettings, db: Database):
        self._settings = settings
        self._jobs = Jobs(db)
        self._deletion = JobDeletion(db)
        self._videos = storage.bucket(db, storage.VIDEOS)
        self._mp3s = storage.bucket(db, storage.MP3S)

    def __call__(self, delivery: Delivery, cancel: threading.Event) -> Outcome:
        try:
            job = self._jobs.of_message(delivery.body)
        except JobGone as gone:
            return self._forget(gone.job_id)
        job_id = str(job["_id"])
        telemetry.annotate(job_id=job_id)
        if job["status"] in FINAL:
            return self._settled(job_id)
        job = self._jobs.start_attempt(job_id)
        if job is None:  # another worker settled it a moment ago, or it was deleted
            return self._settled(job_id)
        if job["attempts"] > self._settings.max_attempts:
            return self._fail(job, f"Gave up after {self._settings.max_attempts} attempts.")
        log.info("converting", extra={"job_id": job_id, "attempt": job["attempts"]})
        try:
            return self._convert(job, cancel)
        except Cancelled:
            return self._stopped(job_id)
        except ConversionFailed as error:
            return self._fail(job, str(error))
        except NoFile:
            return self._fail(job, "The uploaded video is no longer in storage.")
        except ConnectionFailure as error:
            log.warning("storage unavailable; handing the message back", extra={"job_id": job_id})
            return Outcome.requeue(f"storage unavailable: {error.__class__.__name__}")
        except PyMongoError as error:
            return self._fail(job, f"Storage failed while converting: {error.__class__.__name__}.")

    def _convert(self, job: dict, cancel: threading.Event) -> Outcome:
        job_id = str(job["_id"])
        started = time.monotonic()

        def on_progress(percent: int) -> None:
            if not self._jobs.set_progress(job_id, percent):
                cancel.set()  # deleted (or settled elsewhere): stop ffmpeg now

        work = Path(tempfile.mkdtemp(prefix="converter-"))
        try:
            with contextlib.ExitStack() as opened:
                mp3 = work / "audio.mp3"
                source = self._source(job["video_fid"], work / "video", cancel, opened)
                result = convert(source, mp3, cancel=cancel, timeout=self._settings.convert_timeout_seconds,
                                 max_duration=self._settings.max_duration_seconds, on_progress=on_progress)
                self._remove_leftovers(job_id)
                mp3_fid = self._store(mp3, job)
            if not self._jobs.finish(job_id, mp3_fid):  # deleted meanwhile, or another worker won: keep theirs
                storage_retry(storage.delete_file)(self._mp3s, mp3_fid)
                _remove_folder(work)
                return self._settled(job_id)
        except BaseException:
            _remove_folder(work)
            raise
        metrics.CONVERSION_SECONDS.observe(time.monotonic() - started)
        log.info("converted", extra={"job_id": job_id, "mp3_fid": str(mp3_fid),
                                     "seconds": round(result.mp3_seconds, 2)})
        # The video and the work folder (a temp copy of the video, maybe) go once the MP3 is announced:
        # the user does not wait for their removal.
        return Outcome.ack(self._announcement({**job, "mp3_fid": mp3_fid}),
                           then=partial(self._tidy, job, work))

    def _tidy(self, job: dict, work: Path) -> None:
        _remove_folder(work)
        self._drop_video(job)

    def _source(self, video_fid, target: Path, cancel: threading.Event, opened: contextlib.ExitStack):
        """What ffmpeg reads: the open GridFS file itself when it can be streamed, else a temp copy."""
        video = self._open_streamable(video_fid)
        if video is not None:
            return opened.enter_context(video)
        self._fetch(video_fid, target, cancel)
        return target

    @storage_retry
    @telemetry.traced("GridFS open videos")
    def _open_streamable(self, video_fid):
        """The stored video, open, when ffmpeg can read it front to back (its bytes are then read
        during the ffmpeg span); None when it needs a seekable copy."""
        video = storage.rereadable(self._videos.open_download_stream(video_fid))
        if streamable.is_streamable(video):
            return video
        video.close()
        return None

    @storage_retry
    @telemetry.traced("GridFS fetch videos")
    def _fetch(self, video_fid, target: Path, cancel: threading.Event) -> None:
        with self._videos.open_download_stream(video_fid) as source, target.open("wb") as out:
            while chunk := source.readchunk():  # a stored chunk as it came (read(n) copies it in pieces)
                if cancel.is_set():
                    raise Cancelled("stopped while fetching the video")
                out.write(chunk)

    @storage_retry
    def _store(self, mp3: Path, job: dict):
        with mp3.open("rb") as source:
            return self._mp3s.upload_from_chunks(mp3_name(job["filename"]), iter(partial(source.read, COPY_CHUNK), b""),
                                                 metadata={"job_id": str(job["_id"]), "owner": job["owner"]})

    @storage_retry
    def _remove_leftovers(self, job_id: str) -> None:
        """Delete MP3s that an earlier attempt stored but never recorded on the job."""
        self._deletion.delete_mp3s(job_id)

    def _drop_video(self, job: dict) -> None:
        """The job is final: its video has served (unless KEEP_VIDEOS). Retention removes it later
        with the job if this fails."""
        if self._settings.keep_videos:
            return
        try:
            storage_retry(storage.delete_file)(self._videos, job["video_fid"])
        except PyMongoError as error:
            log.warning("video not removed", extra={"job_id": str(job["_id"]), "error": repr(error)})

    def _settled(self, job_id: str) -> Outcome:
        """A job that is already final: announce its MP3 again, or drop the message."""
        job = self._jobs.get(job_id)
        if job is None:
            return self._forget(job_id)
        self._drop_video(job)  # in case the attempt that settled it died before
        if job["status"] == Status.DONE:
            return Outcome.ack(self._announcement(job))
        return Outcome.reject(f"job {job_id} already failed: {job.get('error')}")

    def _stopped(self, job_id: str) -> Outcome:
        """ffmpeg or the fetch was stopped: the job was deleted, or this consumer is going away."""
        if self._jobs.get(job_id) is None:
            return self._forget(job_id)
        return Outcome.requeue("stopped before the end")

    def _forget(self, job_id: str) -> Outcome:
        """The job was deleted: no MP3 of it may stay, and there is nothing more to do."""
        log.info("job deleted; not converting it", extra={"job_id": job_id})
        self._remove_leftovers(job_id)
        return Outcome.ack()

    def _fail(self, job: dict, reason: str) -> Outcome:
        job_id = str(job["_id"])
        if not storage_retry(self._jobs.fail)(job_id, reason):  # deleted meanwhile (its video with it), or settled
            return self._settled(job_id)
        log.warning("conversion failed", extra={"job_id": job_id, "reason": reason})
        self._drop_video(job)
        return Outcome.reject(reason)

    def _announcement(self, job: dict) -> tuple[str, dict]:
        return self._settings.mp3_queue, {
            "job_id": str(job["_id"]),
            "video_fid": str(job["video_fid"]),
            "mp3_fid": str(job["mp3_fid"]),
            "owner": job["owner"],
        }


def _remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
