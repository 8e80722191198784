"""GET /jobs/<job_id>/events: the caller's job, live, as Server-Sent Events (gateway/job_stream.py)."""

from flask import Blueprint, Response, g, request

from common.http import error_response
from gateway.access import login_required
from gateway.context import gateway
from gateway.job_stream import disconnect_probe, follow, last_event_id

blueprint = Blueprint("events", __name__)


@blueprint.get("/jobs/<job_id>/events")
@login_required
def job_events(job_id):
    jobs, owner = gateway().jobs, g.owner
    if jobs.get_owned(job_id, owner) is None:
        return error_response(404, "job_not_found", "No such job among yours.")
    stream = follow(lambda: jobs.get_owned(job_id, owner), last_event_id(request.headers.get("Last-Event-ID")),
                    disconnect_probe(request.environ))
    return Response(stream, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
