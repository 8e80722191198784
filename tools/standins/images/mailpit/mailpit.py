#!/opt/venv/bin/python
"""Mailpit's stand-in: `/mailpit` serves SMTP on 1025 and the HTTP API on 8025; `/mailpit readyz` asks the
running one whether it is ready (exit 0) or not (exit 1), as Mailpit's own subcommand does."""

import email
import email.policy
import http.server
import itertools
import json
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from email.utils import getaddresses

from aiosmtpd.controller import Controller

HTTP_PORT = 8025
SMTP_PORT = 1025


class Mailbox:
    def __init__(self):
        self.messages: list[dict] = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        html = message.get_body(("html",))
        entry = {
            "ID": str(next(self.ids)),
            "MessageID": message.get("Message-ID", ""),
            "Read": False,
            "From": address(message.get("From", envelope.mail_from)),
            "To": [address(a) for a in (message.get_all("To") or envelope.rcpt_tos)],
            "Cc": [address(a) for a in message.get_all("Cc") or []],
            "Subject": message.get("Subject", ""),
            "Created": datetime.now(UTC).isoformat(),
            "Size": len(envelope.content),
            "Text": body.get_content() if body else "",
            "HTML": html.get_content() if html else "",
        }
        entry["Snippet"] = entry["Text"][:250]
        with self.lock:
            self.messages.insert(0, entry)
        return "250 Message accepted for delivery"


def address(text: str) -> dict:
    name, mail = getaddresses([str(text)])[0]
    return {"Name": name, "Address": mail}


def api(mailbox: Mailbox):
    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, payload=None):
            body = json.dumps(payload).encode() if payload is not None else b"ok"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if payload is not None else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            with mailbox.lock:
                messages = [{k: v for k, v in m.items() if k not in ("Text", "HTML")} for m in mailbox.messages]
                if path in ("/readyz", "/livez"):
                    return self.reply(200)
                if path == "/api/v1/messages":
                    return self.reply(200, {"total": len(messages), "unread": len(messages), "count": len(messages),
                                            "messages_count": len(messages), "start": 0, "tags": [],
                                            "messages": messages})
                if path.startswith("/api/v1/message/"):
                    wanted = path.rsplit("/", 1)[1]
                    found = [m for m in mailbox.messages if wanted in (m["ID"], "latest")][:1]
                    return self.reply(200, found[0]) if found else self.reply(404, {"error": "message not found"})
            return self.reply(404, {"error": "not found"})

        def do_DELETE(self):
            if self.path.split("?")[0] == "/api/v1/messages":
                with mailbox.lock:
                    mailbox.messages.clear()
                return self.reply(200)
            return self.reply(404, {"error": "not found"})

        def log_message(self, format, *args):
            pass

    return Handler


def readyz() -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/readyz", timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def serve() -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="0.0.0.0", port=SMTP_PORT)  # noqa: S104
    smtp.start()
    print(f"mailpit stand-in: SMTP on {SMTP_PORT}, HTTP on {HTTP_PORT}", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), api(mailbox)).serve_forever()  # noqa: S104


if __name__ == "__main__":
    if sys.argv[1:] == ["readyz"]:
        sys.exit(readyz())
    serve()
