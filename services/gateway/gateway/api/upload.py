"""POST /upload: a video in, a queued job out; nothing half-done stays behind when a step fails.

One user cannot fill the queue: with MAX_ACTIVE_JOBS_PER_USER jobs queued or converting, the next
upload is refused (429) before its body is read. Two uploads racing for the last place are counted
again once their jobs exist, and the one that finds itself over the limit undoes itself.
"""

import contextlib
import logging
import os

from flask import Blueprint, g, jsonify, request
from pymongo.errors import PyMongoError

from common import metrics, telemetry
from common.broker import PublishError
from common.http import error_response
from gateway.access import login_required
from gateway.context import gateway
from gateway.uploads import MIB, SNIFF_BYTES, clean_filename, video_type

log = logging.getLogger(__name__)

# Long enough for a short video to convert; the client may ask sooner with GET /jobs.
RETRY_AFTER_SECONDS = 30

blueprint = Blueprint("upload", __name__)


@blueprint.post("/upload")
@login_required
def upload():
    gw = gateway()
    if gw.jobs.count_active(g.owner) >= gw.settings.max_active_jobs_per_user:
        return _too_many_jobs(gw.settings.max_active_jobs_per_user)
    max_mb = gw.settings.max_upload_mb
    files = request.files.getlist("file")
    if len(request.files) != 1 or len(files) != 1 or request.form:
        return error_response(400, "one_file_expected",
                              "Send exactly one file, in the multipart field 'file', and no other field.")
    upload = files[0]
    head = upload.stream.read(SNIFF_BYTES)
    if not head:
        return error_response(400, "empty_file", "The file is empty.")
    content_type = video_type(head)
    if content_type is None:
        return error_response(415, "not_a_video", "Upload a video file (mp4, mkv, mov, webm, avi, ...).")
    size = upload.stream.seek(0, os.SEEK_END)
    if size > max_mb * MIB:
        return error_response(413, "too_large", f"The file is larger than {max_mb} MiB.")
    upload.stream.seek(0)
    filename = clean_filename(upload.filename)
    video_fid = gw.videos.upload_from_stream(
        filename, upload.stream, metadata={"owner": g.owner, "content_type": content_type}
    )
    try:
        job = gw.jobs.create(g.owner, filename, video_fid)
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
        gw.publisher.publish(gw.settings.video_queue, message)
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


def _too_many_jobs(limit: int):
    response = error_response(429, "too_many_jobs", f"You already have {limit} videos waiting or converting; "
                                                    "send this one when one of them is done.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
