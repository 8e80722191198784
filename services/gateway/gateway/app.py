"""The gateway's HTTP API: the public contract of DESIGN.md."""

import contextlib
import functools
import logging
import os

from flask import Flask, Response, g, jsonify, request
from gridfs.errors import NoFile
from pymongo.database import Database
from pymongo.errors import PyMongoError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from common import storage
from common.broker import Publisher, PublishError
from common.http import bearer_token, error_response, install_json_errors
from common.jobs import Jobs, mp3_name, public_view
from common.settings import GatewaySettings
from gateway.auth_client import AuthClient, AuthUnavailable
from gateway.uploads import SNIFF_BYTES, clean_filename, download_name, video_type

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# Room for the multipart envelope around a file of exactly MAX_UPLOAD_MB.
MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: GatewaySettings, *, db: Database, publisher: Publisher, auth: AuthClient) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * MIB + MULTIPART_OVERHEAD
    install_json_errors(app)
    jobs = Jobs(db)
    videos = storage.bucket(db, storage.VIDEOS)
    mp3s = storage.bucket(db, storage.MP3S)

    @app.errorhandler(AuthUnavailable)
    def auth_down(error):
        log.error("auth unavailable", extra={"error": str(error)})
        return error_response(503, "auth_unavailable", "The login service is unavailable; try again soon.")

    @app.errorhandler(PyMongoError)
    def storage_down(error):
        log.error("MongoDB unavailable", extra={"error": repr(error)})
        return error_response(503, "storage_unavailable", "File storage is unavailable; try again soon.")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error):
        return error_response(413, "too_large", f"The file is larger than {settings.max_upload_mb} MiB.")

    def login_required(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            token = bearer_token()
            claims = auth.validate(token) if token else None
            if claims is None:
                return error_response(401, "unauthorized",
                                      "Send 'Authorization: Bearer <token>'; get a token from POST /login.")
            g.owner = claims["sub"]
            return view(*args, **kwargs)

        return wrapper

    @app.post("/login")
    def login():
        answer = auth.login(request.headers.get("Authorization", ""))
        if answer.status_code == 200:
            return Response(answer.text, mimetype="text/plain")
        response = Response(answer.content, status=answer.status_code, mimetype="application/json")
        if "Retry-After" in answer.headers:
            response.headers["Retry-After"] = answer.headers["Retry-After"]
        return response

    @app.post("/upload")
    @login_required
    def upload():
        files = request.files.getlist("file")
        if len(request.files) != 1 or len(files) != 1:
            return error_response(400, "one_file_expected",
                                  "Send exactly one file, in the multipart field 'file'.")
        upload = files[0]
        head = upload.stream.read(SNIFF_BYTES)
        if not head:
            return error_response(400, "empty_file", "The file is empty.")
        content_type = video_type(head)
        if content_type is None:
            return error_response(415, "not_a_video",
                                  "Upload a video file (mp4, mkv, mov, webm, avi, ...).")
        if upload.stream.seek(0, os.SEEK_END) > settings.max_upload_mb * MIB:
            return error_response(413, "too_large", f"The file is larger than {settings.max_upload_mb} MiB.")
        upload.stream.seek(0)
        filename = clean_filename(upload.filename)
        video_fid = videos.upload_from_stream(
            filename, upload.stream, metadata={"owner": g.owner, "content_type": content_type}
        )
        try:
            job = jobs.create(g.owner, filename, video_fid)
        except PyMongoError:
            with contextlib.suppress(PyMongoError):
                videos.delete(video_fid)
            raise
        message = {"job_id": str(job["_id"]), "video_fid": str(video_fid), "mp3_fid": None, "owner": g.owner}
        try:
            publisher.publish(settings.video_queue, message)
        except PublishError as error:
            # Nothing half-done stays behind: no job that never runs, no video nobody owns.
            log.error("could not queue the upload", extra={"job_id": message["job_id"], "error": str(error)})
            jobs.delete(job["_id"])
            videos.delete(video_fid)
            return error_response(503, "queue_unavailable",
                                  "The job queue is unavailable, so nothing was stored; try again soon.")
        log.info("upload queued", extra={"job_id": message["job_id"], "owner": g.owner, "upload_name": filename})
        return jsonify(job_id=message["job_id"], video_fid=message["video_fid"], status=job["status"]), 202

    @app.get("/jobs")
    @login_required
    def list_jobs():
        return jsonify(jobs=[public_view(job) for job in jobs.list_owned(g.owner)])

    @app.get("/jobs/<job_id>")
    @login_required
    def show_job(job_id):
        job = jobs.get_owned(job_id, g.owner)
        if job is None:
            return error_response(404, "job_not_found", "No such job among yours.")
        return jsonify(public_view(job))

    @app.get("/download")
    @login_required
    def download():
        fid = request.args.get("fid", "").strip()
        if not fid:
            return error_response(400, "fid_required", "Add ?fid=<mp3_fid> from GET /jobs/<job_id>.")
        job = jobs.find_by_mp3(fid, g.owner)
        try:
            if job is None:
                raise NoFile(fid)
            mp3 = mp3s.open_download_stream(job["mp3_fid"])
        except NoFile:
            return error_response(404, "file_not_found", "No such MP3 among yours.")
        headers = Headers()
        headers.set("Content-Disposition", "attachment", **download_name(mp3_name(job["filename"])))
        headers["Content-Length"] = str(mp3.length)
        return Response(iter(mp3), mimetype="audio/mpeg", headers=headers, direct_passthrough=True)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        checks = {
            "auth": auth.ping,
            "mongodb": functools.partial(storage.ping, db),
            "rabbitmq": publisher.ping,
        }
        if request.args.get("scope") != "gateway":
            checks["converter"] = functools.partial(_has_consumer, publisher, settings.video_queue)
            checks["notification"] = functools.partial(_has_consumer, publisher, settings.mp3_queue)
        states = {name: _state(check) for name, check in checks.items()}
        ready = all(state == "ok" for state in states.values())
        return jsonify(ready=ready, checks=states), 200 if ready else 503

    return app


def _has_consumer(publisher: Publisher, queue: str) -> None:
    if publisher.consumer_count(queue) == 0:
        raise LookupError(f"no consumer on queue {queue!r}")


def _state(check) -> str:
    try:
        check()
    except Exception as error:
        return f"error: {error}"
    return "ok"
