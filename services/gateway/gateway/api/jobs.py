"""GET /jobs and GET /jobs/<job_id>: the caller's jobs, and nobody else's."""

from flask import Blueprint, g, jsonify

from common.http import error_response
from common.jobs import public_view
from gateway.access import login_required
from gateway.context import gateway

blueprint = Blueprint("jobs", __name__)


@blueprint.get("/jobs")
@login_required
def list_jobs():
    return jsonify(jobs=[public_view(job) for job in gateway().jobs.list_owned(g.owner)])


@blueprint.get("/jobs/<job_id>")
@login_required
def show_job(job_id):
    job = gateway().jobs.get_owned(job_id, g.owner)
    if job is None:
        return error_response(404, "job_not_found", "No such job among yours.")
    return jsonify(public_view(job))
