"""GET /jobs/<job_id>/events: the caller's job, live, as Server-Sent Events (gateway/job_stream.py)."""

from flask import Blueprint, Response, g, request
from werkzeug.wsgi import ClosingIterator

from common.http import bearer_token, error_response
from gateway.access import login_required
from gateway.auth_client import AuthUnavailable
from gateway.context import gateway
from gateway.job_stream import disconnect_probe, follow, last_event_id

# Long enough for a page or a client to close a stream it no longer needs.
RETRY_AFTER_SECONDS = 30

blueprint = Blueprint("events", __name__)


@blueprint.get("/jobs/<job_id>/events")
@login_required
def job_events(job_id):
    gw, owner = gateway(), g.owner
    if gw.jobs.get_owned(job_id, owner) is None:
        return error_response(404, "job_not_found", "No such job among yours.")
    give_back = gw.streams.take(owner)
    if give_back is None:
        return _too_many_streams(gw.streams.limit)
    stream = follow(lambda: gw.jobs.get_owned(job_id, owner), last_event_id(request.headers.get("Last-Event-ID")),
                    disconnect_probe(request.environ), _still_accepted(gw.auth, bearer_token()))
    # The place is given back when the server closes the response, however the stream ended.
    return Response(ClosingIterator(stream, [give_back]), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _still_accepted(auth, token: str):
    def accepted() -> bool:
        try:
            return auth.validate(token) is not None
        except AuthUnavailable:  # cannot be checked: ended, as any other call would be refused now
            return False

    return accepted


def _too_many_streams(limit: int):
    return error_response(429, "too_many_streams", f"You already follow {limit} jobs live; "
                                                    "close one of those pages or streams first.", RETRY_AFTER_SECONDS)
