"""GET /jobs (a page at a time), GET /jobs/<job_id> and DELETE /jobs/<job_id>: the caller's jobs only."""

from flask import Blueprint, Response, g, jsonify, request

from common.http import error_response
from common.jobs import public_view
from gateway import paging
from gateway.access import login_required
from gateway.context import gateway

blueprint = Blueprint("jobs", __name__)

NOT_FOUND = "No such job among yours."


@blueprint.get("/jobs")
@login_required
def list_jobs():
    try:
        limit = paging.limit(request.args.get("limit"))
        after = paging.after(request.args.get("cursor"))
    except paging.BadPage as error:
        return error_response(400, "bad_page", str(error))
    # One more than asked tells whether another page follows.
    jobs = gateway().jobs.list_owned(g.owner, limit + 1, after)
    page = jobs[:limit]
    next_cursor = paging.cursor_of(page[-1]) if len(jobs) > limit else None
    return jsonify(jobs=[public_view(job) for job in page], next_cursor=next_cursor)


@blueprint.get("/jobs/<job_id>")
@login_required
def show_job(job_id):
    job = gateway().jobs.get_owned(job_id, g.owner)
    if job is None:
        return error_response(404, "job_not_found", NOT_FOUND)
    return jsonify(public_view(job))


@blueprint.delete("/jobs/<job_id>")
@login_required
def delete_job(job_id):
    if not gateway().deletion.delete_owned(job_id, g.owner):
        return error_response(404, "job_not_found", NOT_FOUND)
    return Response(status=204)
