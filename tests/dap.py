"""A small Debug Adapter Protocol client, as an editor speaks it to debugpy: Content-Length framed JSON
over a socket, requests answered by responses of the same `request_seq`, events in between.

What the debugger tests need and no more: attach (with path mappings), set breakpoints, wait for a
stop, read the stack and a frame's locals, continue, disconnect.
https://microsoft.github.io/debug-adapter-protocol/specification
"""

import contextlib
import json
import socket
import time
from pathlib import Path


class DAPError(AssertionError):
    pass


class DAPClient:
    def __init__(self, host: str, port: int, timeout: float = 60):
        self._socket = self._connect(host, port, timeout)
        self._buffer = b""
        self._seq = 0
        self.events: list[dict] = []

    @staticmethod
    def _connect(host: str, port: int, timeout: float) -> socket.socket:
        """debugpy may still be starting (or restarting, after a reload): try until it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection((host, port), timeout=5)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # ---------------------------------------------------------------- the wire

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self._socket.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _receive(self, timeout: float) -> dict:
        self._socket.settimeout(timeout)
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        length = int(headers["Content-Length"])
        while len(rest) < length:
            self._buffer = head + b"\r\n\r\n" + rest
            self._read()
            head, _, rest = self._buffer.partition(b"\r\n\r\n")
        self._buffer = rest[length:]
        return json.loads(rest[:length])

    def _read(self) -> None:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise DAPError("the debug adapter closed the connection")
        self._buffer += chunk

    def _next(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DAPError("timed out waiting for the debug adapter")
        return self._receive(remaining)

    # ---------------------------------------------------------------- requests and events

    def request(self, command: str, arguments: dict | None = None, timeout: float = 30, wait: bool = True) -> dict:
        """Send a request; return its response's body (raises on success: false)."""
        self._seq += 1
        seq = self._seq
        self._send({"seq": seq, "type": "request", "command": command, "arguments": arguments or {}})
        if not wait:
            return {"request_seq": seq}
        return self.response(seq, timeout)

    def response(self, seq: int, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message["type"] == "event":
                self.events.append(message)
            elif message["type"] == "response" and message["request_seq"] == seq:
                if not message["success"]:
                    raise DAPError(f"{message['command']}: {message.get('message')}")
                return message.get("body") or {}

    def event(self, name: str, timeout: float = 60) -> dict:
        """The first event of that name, seen already or arriving within `timeout` seconds."""
        for index, event in enumerate(self.events):
            if event["event"] == name:
                return self.events.pop(index)["body"]
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message["type"] == "event":
                if message["event"] == name:
                    return message.get("body") or {}
                self.events.append(message)

    # ---------------------------------------------------------------- a session

    def attach(self, path_mappings: list[tuple[Path, str]] = ()) -> None:
        """initialize, attach, then (once `initialized` arrives) configurationDone: the editor's order."""
        self.request("initialize", {"clientID": "mp3converter-tests", "adapterID": "debugpy",
                                    "pathFormat": "path", "linesStartAt1": True, "columnsStartAt1": True})
        mappings = [{"localRoot": str(local), "remoteRoot": remote} for local, remote in path_mappings]
        attach = self.request("attach", {"justMyCode": False, "pathMappings": mappings}, wait=False)
        self.event("initialized")
        self._breakpoints_then_done = attach["request_seq"]

    def set_breakpoint(self, source: Path, line: int) -> dict:
        [breakpoint] = self.request("setBreakpoints", {"source": {"path": str(source)},
                                                       "breakpoints": [{"line": line}]})["breakpoints"]
        return breakpoint

    def configuration_done(self) -> None:
        self.request("configurationDone")
        self.response(self._breakpoints_then_done)

    def stopped(self, timeout: float = 120) -> dict:
        return self.event("stopped", timeout)

    def stack(self, thread_id: int) -> list[dict]:
        return self.request("stackTrace", {"threadId": thread_id})["stackFrames"]

    def locals(self, frame_id: int) -> dict[str, str]:
        scopes = self.request("scopes", {"frameId": frame_id})["scopes"]
        reference = next(scope["variablesReference"] for scope in scopes if scope["name"].lower() == "locals")
        variables = self.request("variables", {"variablesReference": reference})["variables"]
        return {variable["name"]: variable["value"] for variable in variables}

    def resume(self, thread_id: int) -> None:
        self.request("continue", {"threadId": thread_id})

    def close(self) -> None:
        with contextlib.suppress(DAPError, OSError):
            self.request("disconnect", {"terminateDebuggee": False}, timeout=10)
        self._socket.close()


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of `path` that contains `text`."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{path} has no line with {text!r}")
