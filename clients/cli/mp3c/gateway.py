"""The gateway's HTTP API as mp3c uses it: every call maps transport failures to Unreachable, 401 to
NotLoggedIn and any other error answer to Refused with the server's own message."""

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from httpx_sse import connect_sse

from mp3c.errors import Cancelled, NotLoggedIn, Refused, Unreachable, cannot_save

FINAL = ("done", "failed")
# The server sends a heartbeat every 15 s: a silent stream for longer than this is a lost one.
STREAM_READ_SECONDS = 40
RECONNECTS = 5


class CountingReader:
    """A file as httpx reads it for a multipart body, counting bytes as they go, and stopping on Ctrl-C."""

    def __init__(self, file, on_read: Callable[[int], None], cancelled: threading.Event):
        self._file, self._on_read, self._cancelled = file, on_read, cancelled

    def read(self, size: int = -1) -> bytes:
        if self._cancelled.is_set():
            raise Cancelled
        data = self._file.read(size)
        self._on_read(len(data))
        return data

    def __getattr__(self, name):  # fileno, seek, tell: what httpx uses to learn the length
        return getattr(self._file, name)


class Gateway:
    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(30, read=120))

    def login_required(self) -> None:
        self._headers()

    def _headers(self) -> dict[str, str]:
        if not self._token:
            raise NotLoggedIn
        return {"Authorization": f"Bearer {self._token}"}

    def _send(self, method: str, path: str, **options) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        return self._checked(response)

    def _unreachable(self, error: Exception) -> Unreachable:
        return Unreachable(f"The gateway at {self.url} is not reachable ({error.__class__.__name__}); is it running?")

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        response.read()
        if response.status_code == 401 and response.request.url.path != "/login":
            raise NotLoggedIn
        try:
            message = response.json()["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text.strip() or response.reason_phrase
        if "Retry-After" in response.headers:
            message += f" (try again in {response.headers['Retry-After']} s)"
        raise Refused(response.status_code, message)

    def login(self, email: str, password: str) -> str:
        try:
            return self._send("POST", "/login", auth=(email, password)).text
        except Refused as refused:
            if refused.status == 401:
                raise Refused(401, "Wrong e-mail or password.") from None
            raise

    def upload(self, path: Path, on_bytes: Callable[[int], None], cancelled: threading.Event) -> dict:
        with path.open("rb") as file:
            body = CountingReader(file, on_bytes, cancelled)
            return self._send("POST", "/upload", headers=self._headers(),
                              files={"file": (path.name, body, "application/octet-stream")}).json()

    def job(self, job_id: str) -> dict:
        return self._send("GET", f"/jobs/{job_id}", headers=self._headers()).json()

    def delete(self, job_id: str) -> None:
        self._send("DELETE", f"/jobs/{job_id}", headers=self._headers())

    def jobs(self) -> list[dict]:
        return self._send("GET", "/jobs", headers=self._headers()).json()["jobs"]

    def follow(self, job_id: str, on_event: Callable[[str, dict], None], cancelled: threading.Event) -> dict:
        """Call on_event for each event of the job until its final one, which is returned. A dropped
        stream is resumed where it stopped (Last-Event-ID)."""
        last_id, lost = None, 0
        timeout = httpx.Timeout(30, read=STREAM_READ_SECONDS)
        while True:
            headers = self._headers() | ({"Last-Event-ID": last_id} if last_id else {})
            try:
                with connect_sse(self._http, "GET", f"/jobs/{job_id}/events", headers=headers,
                                 timeout=timeout) as source:
                    self._checked(source.response)
                    for event in source.iter_sse():
                        if cancelled.is_set():
                            raise Cancelled
                        if not event.data:  # a `retry:` line alone carries no event
                            continue
                        last_id, lost = event.id or last_id, 0
                        job = json.loads(event.data)
                        on_event(event.event, job)
                        if event.event in FINAL:
                            return job
            except httpx.TransportError as error:
                lost += 1
                if lost > RECONNECTS:
                    raise self._unreachable(error) from None
                time.sleep(min(2**lost, 10))
            if cancelled.is_set():
                raise Cancelled

    def download(self, mp3_fid: str, target: Path) -> Path:
        """Stream the MP3 into `target` through a .part file of its own next to it, so that a broken
        download leaves nothing. The part file is a new one (never an existing file, nor a symlink's
        target), and it replaces `target` itself, whatever `target` was (a symlink's target is left alone)."""
        if target.name in ("", ".", ".."):
            raise ValueError(f"not a file name: {target.name!r}")
        partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        try:
            with self._http.stream("GET", "/download", params={"fid": mp3_fid}, headers=self._headers()) as response:
                self._checked(response)
                with _new_file(partial) as out:
                    for chunk in response.iter_bytes(1 << 16):
                        out.write(chunk)
                os.replace(partial, target)
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        except OSError as error:
            raise cannot_save(target.parent, error) from None
        finally:
            partial.unlink(missing_ok=True)
        return target


def _new_file(path: Path):
    """A file created here and now for writing: fails if the name exists, even as a dangling symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o666), "wb")
