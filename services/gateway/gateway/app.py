"""The gateway's Flask app: its dependencies, the routes of the public contract (docs/api.md), and JSON errors."""

import logging

from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from pymongo.database import Database
from pymongo.errors import PyMongoError
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from common import metrics, telemetry
from common.broker import Publisher, dead_letter_queue
from common.http import error_response, install_json_errors
from common.settings import GatewaySettings
from gateway.api import download, events, health, jobs, login, page, reference, upload
from gateway.auth_client import AuthClient, AuthUnavailable
from gateway.context import EXTENSION, GatewayDeps
from gateway.filenames import MIB

log = logging.getLogger(__name__)

# Room for the multipart envelope around a file of exactly MAX_UPLOAD_MB.
MULTIPART_OVERHEAD = 64 * 1024
ROUTES = (page, login, upload, jobs, events, download, health, reference)


def create_app(settings: GatewaySettings, *, db: Database, publisher: Publisher, auth: AuthClient,
               tracer_provider: TracerProvider | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)  # every route is one of openapi.yaml's
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * MIB + MULTIPART_OVERHEAD
    app.extensions[EXTENSION] = GatewayDeps.build(settings, db, publisher, auth)
    install_json_errors(app)

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

    @app.errorhandler(ClientDisconnected)
    def body_cut_short(error):
        if isinstance(error.__context__, TimeoutError):  # the body stopped coming (common/http_worker.py)
            return error_response(408, "request_timeout", "The upload stalled; send it again.")
        return error_response(400, "client_disconnected", "The request body ended early; send it again.")

    for module in ROUTES:
        app.register_blueprint(module.blueprint)
    queues = (settings.video_queue, settings.mp3_queue)
    metrics.instrument_app(app, "gateway", [metrics.QueueDepths(publisher, (*queues, *map(dead_letter_queue, queues)))])
    telemetry.instrument_app(app, tracer_provider)
    return app
