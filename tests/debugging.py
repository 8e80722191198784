"""What the debugger tests do in every way of running the stack, over the Debug Adapter Protocol as an
editor would: attach to a service's debugpy, stop at a breakpoint, read the stack and a local variable,
continue, and see the work finish as if nothing had happened."""

import threading
from pathlib import Path

from tests.dap import DAPClient, line_of

UPLOAD_ROUTE = Path("gateway/api/upload.py")
UPLOAD_LINE = "metrics.upload_accepted(sized.total)"
CONVERTER_HANDLER = Path("converter/handler.py")
CONVERTER_LINE = 'log.info("converting'


def _session(port: int, mappings: list[tuple[Path, str]], source: Path, line: int) -> DAPClient:
    dap = DAPClient("127.0.0.1", port)
    dap.attach(mappings)
    breakpoint = dap.set_breakpoint(source, line)
    dap.configuration_done()
    assert breakpoint["verified"], breakpoint
    return dap


def _in_background(action) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = action()
        except Exception as error:  # shown by the test that waits for it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _stopped_at(dap: DAPClient, source: Path, line: int) -> tuple[int, dict, dict[str, str]]:
    stopped = dap.stopped(timeout=180)
    assert stopped["reason"] == "breakpoint", stopped
    thread_id = stopped["threadId"]
    [top, *_] = dap.stack(thread_id)
    assert Path(top["source"]["path"]).resolve() == source.resolve() and top["line"] == line, top
    return thread_id, top, dap.locals(top["id"])


def _stop_during(port: int, mappings, source: Path, line: int, action, waits: bool) -> tuple[dict, dict, object]:
    """Attach, set the breakpoint, run `action` in the background until the breakpoint stops (`waits`: with
    `action` still waiting on it), read the top frame and its locals, continue; returns them with what
    `action` returned once it finished."""
    dap = _session(port, mappings, source, line)
    try:
        running, outcome = _in_background(action)
        thread_id, top, local = _stopped_at(dap, source, line)
        assert running.is_alive() or not waits, "the work did not wait at the breakpoint"
        dap.resume(thread_id)
        running.join(timeout=120)
    finally:
        dap.close()
    assert "error" not in outcome, outcome
    return top, local, outcome["value"]


def upload_stops_at_the_breakpoint(client, port: int, gateway_code: Path, mappings, video: Path) -> None:
    """A breakpoint in the upload route: the upload waits there, its locals readable; then it completes."""
    source = gateway_code / UPLOAD_ROUTE
    top, local, response = _stop_during(port, mappings, source, line_of(source, UPLOAD_LINE),
                                        lambda: client.upload(video, name="debugged.mp4"), waits=True)
    assert top["name"] == "_receive", top  # the upload route's step that stores the file
    assert local["filename"] == "'debugged.mp4'", local
    assert response.status_code == 202, response.text


def conversion_stops_at_the_breakpoint(client, port: int, converter_code: Path, mappings, video: Path) -> None:
    """A breakpoint in the converter's handler: the job's message waits there, its job_id readable; then the
    conversion goes on and the job is done. (The upload goes on in the background: where all four services
    share a process, run-local, a stop at a breakpoint pauses the gateway's threads too.)"""
    source = converter_code / CONVERTER_HANDLER
    top, local, response = _stop_during(port, mappings, source, line_of(source, CONVERTER_LINE),
                                        lambda: client.upload(video, name="converted-under-debugger.mp4"), waits=False)
    assert top["name"] == "__call__", top
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert local["job_id"] == repr(job_id), local
    assert client.wait_final(job_id, timeout=300)["status"] == "done"
