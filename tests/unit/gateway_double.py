"""The gateway under test: its app with mongomock, a fake broker and a fake auth, every answer checked
against openapi.yaml."""

import contextlib
import threading
import time

import requests
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import make_server

from common.settings import GatewaySettings, load
from gateway.app import create_app
from gateway.auth_client import AuthUnavailable
from tests.unit.contract import ContractClient

ALICE, BOB = "alice@example.com", "bob@example.com"
ALICE_TOKEN, BOB_TOKEN = "token-alice", "token-bob"
VIDEO_QUEUE, MP3_QUEUE = "video-unit", "mp3-unit"


def auth_answer(status: int, body: bytes, content_type: str, **headers) -> requests.Response:
    """What AuthClient.login hands back: auth's own response."""
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": content_type, **headers})
    return response


class FakeAuth:
    """AuthClient without auth: knows two tokens; `down = True` makes every call raise AuthUnavailable."""

    def __init__(self):
        self.down = False
        self.logins: list[str] = []
        self.login_answer = auth_answer(200, b"header.payload.signature", "text/plain; charset=utf-8")

    def _reachable(self) -> None:
        if self.down:
            raise AuthUnavailable("auth is down (test)")

    def validate(self, token: str) -> dict | None:
        self._reachable()
        owner = {ALICE_TOKEN: ALICE, BOB_TOKEN: BOB}.get(token)
        now = int(time.time())
        return {"sub": owner, "admin": False, "iat": now, "exp": now + 600} if owner else None

    def login(self, authorization: str) -> requests.Response:
        self._reachable()
        self.logins.append(authorization)
        return self.login_answer

    def ping(self) -> None:
        self._reachable()


def gateway_settings(**overrides) -> GatewaySettings:
    return load(GatewaySettings, **{"rabbitmq_url": "amqp://guest:guest@127.0.0.1:5672/%2F", "mongodb_uri": "mongodb://unused/",
                                    "auth_svc_address": "http://127.0.0.1:5000", "max_upload_mb": 1,
                                    "video_queue": VIDEO_QUEUE, "mp3_queue": MP3_QUEUE, **overrides})


def gateway_app(settings: GatewaySettings, db, publisher, auth):
    app = create_app(settings, db=db, publisher=publisher, auth=auth)
    app.test_client_class = ContractClient  # every answer is also checked against openapi.yaml
    return app


@contextlib.contextmanager
def served(app):
    """The app behind a real threaded HTTP server (werkzeug's, as run-local serves it); yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
