"""POST /upload: a video in, a queued job out; nothing half-done stays behind when a step fails.

One user cannot fill the queue: an upload takes a place among the user's MAX_ACTIVE_JOBS_PER_USER
before its body is read (common.jobs: a job `uploading`, which nobody sees), and with every place
taken, by jobs queued or converting or by uploads in progress, it is refused (429) there. Uploads
racing for the last places count each other, so none overshoots (`_take_place`). Whatever ends the
upload other than its 202 frees its place and removes what it stored. Nor can many uploads at once exhaust
the gateway's memory: a process receives at most MAX_UPLOADS_IN_FLIGHT at a time (429 for the next,
body unread).
"""

import contextlib
import logging
import random
import time

from flask import Blueprint, g, jsonify, request
from pymongo.errors import PyMongoError
from werkzeug.exceptions import RequestEntityTooLarge

from common import metrics, storage, telemetry
from common.broker import PublishError
from common.formats import SNIFF_BYTES, video_type
from common.http import error_response
from common.jobs import TOUCH_SECONDS
from gateway import fairness
from gateway.access import login_required
from gateway.context import gateway
from gateway.filenames import MIB, clean_filename
from gateway.multipart import FilePart, NotOneFile
from gateway.places import in_one_of

log = logging.getLogger(__name__)

# Long enough for a short video to convert; the client may ask sooner with GET /jobs.
RETRY_AFTER_SECONDS = 30
# Tries for a place when uploads of one user arrive together, each after a random wait of up to this.
PLACE_TRIES = 3
PLACE_BACKOFF_SECONDS = 0.25
# Uploads in flight end within seconds on a fast link.
BUSY_RETRY_AFTER_SECONDS = 5

blueprint = Blueprint("upload", __name__)


@blueprint.post("/upload")
@login_required
@in_one_of(lambda: gateway().uploads, lambda limit: _busy(limit))
def upload():
    gw = gateway()
    place = _take_place(gw)
    if place is None:
        return _too_many_jobs(gw.settings.max_active_jobs_per_user)
    try:
        response = _receive(gw, place)
    except BaseException:
        _release(gw, place)
        raise
    if response.status_code != 202:
        _release(gw, place)
    return response


def _take_place(gw) -> dict | None:
    """A place among the owner's, or None when they are all taken. Each upload counts every place
    taken, its own included, so none overshoots; uploads of one user arriving at once may all find too
    many and let go, so each tries again after a random moment, and the first to come back get in."""
    for attempt in range(PLACE_TRIES):
        place = gw.jobs.reserve(g.owner, g.email, storage.new_id())
        if gw.jobs.count_active(g.owner) <= gw.settings.max_active_jobs_per_user:
            return place
        _release(gw, place)
        if attempt < PLACE_TRIES - 1:
            time.sleep(random.uniform(0, PLACE_BACKOFF_SECONDS))
    return None


def _receive(gw, place: dict):
    """The body goes straight into GridFS as it arrives (no temp file): the first bytes are sniffed
    before anything is stored, and a body that breaks off, grows too large or holds another part
    after the file leaves nothing stored. Only then is the job queued and its message published."""
    max_mb = gw.settings.max_upload_mb
    try:
        part = FilePart(request.stream, request.content_type)
        head = part.head(SNIFF_BYTES)
    except NotOneFile:
        return _not_one_file()
    if not head:
        return error_response(400, "empty_file", "The file is empty.")
    content_type = video_type(head)
    if content_type is None:
        return error_response(415, "not_a_video", "Upload a video file (mp4, mkv, mov, webm, avi, ...).")
    filename = clean_filename(part.filename)
    sized = _Limited(max_mb * MIB, part.chunks(gw.videos.chunk_size), on_progress=lambda: gw.jobs.touch(place["_id"]))
    try:
        gw.videos.upload_from_chunks(place["video_fid"], filename, sized,
                                     metadata={"owner": g.owner, "content_type": content_type})
    except NotOneFile:
        return _not_one_file()
    job = gw.jobs.queue(place["_id"], filename, fairness.priority(*gw.jobs.backlog(g.owner)))
    if job is None:  # its place was taken away meanwhile (retention sweeping what looked abandoned)
        return _queue_unavailable()
    message = {"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": None, "owner": g.owner}
    try:
        gw.publisher.publish(gw.settings.video_queue, message, priority=job["priority"])
    except PublishError as error:
        log.error("could not queue the upload", extra={"job_id": message["job_id"], "error": str(error)})
        return _queue_unavailable()
    metrics.upload_accepted(sized.total)
    telemetry.annotate(job_id=message["job_id"])
    log.info("upload queued", extra={"job_id": message["job_id"], "owner": g.owner, "upload_name": filename})
    accepted = jsonify(job_id=message["job_id"], video_fid=message["video_fid"], status=job["status"])
    accepted.status_code = 202
    return accepted


def _release(gw, place: dict) -> None:
    """Nothing half-done stays behind: no job that never runs, no video nobody owns, no place held."""
    with contextlib.suppress(PyMongoError):
        gw.jobs.delete(place["_id"])  # the place first: it frees the owner's limit
    with contextlib.suppress(PyMongoError):
        storage.delete_file(gw.videos, place["video_fid"])


def _queue_unavailable():
    return error_response(503, "queue_unavailable",
                          "The job queue is unavailable, so nothing was stored; try again soon.")


def _not_one_file():
    return error_response(400, "one_file_expected",
                          "Send exactly one file, in the multipart field 'file', and no other field.")


class _Limited:
    """The chunks, counted; RequestEntityTooLarge as soon as they add up to more than `limit` bytes.
    on_progress is called at most every TOUCH_SECONDS while they come."""

    def __init__(self, limit: int, chunks, on_progress):
        self.limit, self.total, self._chunks, self._on_progress = limit, 0, chunks, on_progress

    def __iter__(self):
        reported = time.monotonic()
        for chunk in self._chunks:
            self.total += len(chunk)
            if self.total > self.limit:
                raise RequestEntityTooLarge()
            if time.monotonic() - reported >= TOUCH_SECONDS:
                self._on_progress()
                reported = time.monotonic()
            yield chunk


def _busy(limit: int):
    """More than MAX_UPLOADS_IN_FLIGHT uploads at once would take more memory than the gateway has."""
    return error_response(429, "too_many_uploads", f"The gateway is receiving {limit} uploads already; "
                                                    "send this one again in a moment.", BUSY_RETRY_AFTER_SECONDS)


def _too_many_jobs(limit: int):
    response = error_response(429, "too_many_jobs", f"You already have {limit} videos uploading, waiting or "
                                                    "converting; send this one when one of them is done.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
