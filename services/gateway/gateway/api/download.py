"""GET /download?fid=<mp3_fid>: the caller's MP3, streamed, named after the upload."""

from flask import Blueprint, Response, g, request
from gridfs.errors import NoFile
from werkzeug.datastructures import Headers

from common.http import error_response
from common.jobs import mp3_name
from gateway.access import login_required
from gateway.context import gateway
from gateway.filenames import download_name

blueprint = Blueprint("download", __name__)


@blueprint.get("/download")
@login_required
def download():
    gw = gateway()
    fid = request.args.get("fid", "").strip()
    if not fid:
        return error_response(400, "fid_required", "Add ?fid=<mp3_fid> from GET /jobs/<job_id>.")
    job = gw.jobs.find_by_mp3(fid, g.owner)
    try:
        if job is None:
            raise NoFile(fid)
        mp3 = gw.mp3s.open_download_stream(job["mp3_fid"])
    except NoFile:
        return error_response(404, "file_not_found", "No such MP3 among yours.")
    headers = Headers()
    headers.set("Content-Disposition", "attachment", **download_name(mp3_name(job["filename"])))
    headers["Content-Length"] = str(mp3.length)
    return Response(iter(mp3), mimetype="audio/mpeg", headers=headers, direct_passthrough=True)
