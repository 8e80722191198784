"""POST /upload: a video in, a queued job out; nothing half-done stays behind when a step fails.

One user cannot fill the queue: with MAX_ACTIVE_JOBS_PER_USER jobs queued or converting, the next
upload is refused (429) before its body is read. Nor can many uploads at once exhaust the gateway's
memory: a process receives at most MAX_UPLOADS_IN_FLIGHT at a time (429 for the next, body unread).
Two uploads racing for the last job place are counted again once their jobs exist, and the one that
finds itself over the limit undoes itself.
"""

import contextlib
import logging

from flask import Blueprint, g, jsonify, request
from pymongo.errors import PyMongoError
from werkzeug.exceptions import RequestEntityTooLarge

from common import metrics, telemetry
from common.broker import PublishError
from common.formats import SNIFF_BYTES, video_type
from common.http import error_response
from gateway import fairness
from gateway.access import login_required
from gateway.context import gateway
from gateway.filenames import MIB, clean_filename
from gateway.multipart import FilePart, NotOneFile
from gateway.places import in_one_of

log = logging.getLogger(__name__)

# Long enough for a short video to convert; the client may ask sooner with GET /jobs.
RETRY_AFTER_SECONDS = 30
# Uploads in flight end within seconds on a fast link.
BUSY_RETRY_AFTER_SECONDS = 5

blueprint = Blueprint("upload", __name__)


@blueprint.post("/upload")
@login_required
@in_one_of(lambda: gateway().uploads, lambda limit: _busy(limit))
def upload():
    """The body goes straight into GridFS as it arrives (no temp file): the first bytes are sniffed
    before anything is stored, and a body that breaks off, grows too large or holds another part
    after the file leaves nothing stored. Only then is the job recorded and its message published."""
    gw = gateway()
    if gw.jobs.count_active(g.owner) >= gw.settings.max_active_jobs_per_user:
        return _too_many_jobs(gw.settings.max_active_jobs_per_user)
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
    sized = _Limited(max_mb * MIB, part.chunks(gw.videos.chunk_size))
    try:
        video_fid = gw.videos.upload_from_chunks(
            filename, sized, metadata={"owner": g.owner, "content_type": content_type}
        )
    except NotOneFile:
        return _not_one_file()
    size = sized.total
    try:
        job = gw.jobs.create(g.owner, filename, video_fid, fairness.priority(*gw.jobs.backlog(g.owner)))
    except PyMongoError:
        with contextlib.suppress(PyMongoError):
            gw.videos.delete(video_fid)
        raise
    if gw.jobs.count_active(g.owner) > gw.settings.max_active_jobs_per_user:  # lost a race for the last place
        gw.jobs.delete(job["_id"])
        gw.videos.delete(video_fid)
        return _too_many_jobs(gw.settings.max_active_jobs_per_user)
    message = {"job_id": str(job["_id"]), "video_fid": str(video_fid), "mp3_fid": None, "owner": g.owner}
    try:
        gw.publisher.publish(gw.settings.video_queue, message, priority=job["priority"])
    except PublishError as error:
        # Nothing half-done stays behind: no job that never runs, no video nobody owns.
        log.error("could not queue the upload", extra={"job_id": message["job_id"], "error": str(error)})
        gw.jobs.delete(job["_id"])
        gw.videos.delete(video_fid)
        return error_response(503, "queue_unavailable",
                              "The job queue is unavailable, so nothing was stored; try again soon.")
    metrics.upload_accepted(size)
    telemetry.annotate(job_id=message["job_id"])
    log.info("upload queued", extra={"job_id": message["job_id"], "owner": g.owner, "upload_name": filename})
    return jsonify(job_id=message["job_id"], video_fid=message["video_fid"], status=job["status"]), 202


def _not_one_file():
    return error_response(400, "one_file_expected",
                          "Send exactly one file, in the multipart field 'file', and no other field.")


class _Limited:
    """The chunks, counted; RequestEntityTooLarge as soon as they add up to more than `limit` bytes."""

    def __init__(self, limit: int, chunks):
        self.limit, self.total, self._chunks = limit, 0, chunks

    def __iter__(self):
        for chunk in self._chunks:
            self.total += len(chunk)
            if self.total > self.limit:
                raise RequestEntityTooLarge()
            yield chunk


def _busy(limit: int):
    """More than MAX_UPLOADS_IN_FLIGHT uploads at once would take more memory than the gateway has."""
    return error_response(429, "too_many_uploads", f"The gateway is receiving {limit} uploads already; "
                                                    "send this one again in a moment.", BUSY_RETRY_AFTER_SECONDS)


def _too_many_jobs(limit: int):
    response = error_response(429, "too_many_jobs", f"You already have {limit} videos waiting or converting; "
                                                    "send this one when one of them is done.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
