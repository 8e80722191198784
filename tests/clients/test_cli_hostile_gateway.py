"""mp3c against a gateway that lies: every text the server sends is shown as text, and its file names
never choose where mp3c writes. The gateway here is a small HTTP server of the test's own, answering
what a compromised or impersonated gateway could answer; mp3c runs as a person runs it, through pipes
and in a real terminal."""

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.clients.terminal import run_in_terminal
from tests.servers import ROOT

MP3C = str(ROOT / "scripts/mp3c")
MP3 = b"ID3" + bytes(range(256)) * 8
HOSTILE_MARKUP = "[blink]clip[/blink] [/] [link=http://evil.example]x[/link].mp4"


class HostileGateway(ThreadingHTTPServer):
    """Answers every job call with `job`; an upload with job j1; its events with `events`; a download with MP3."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Answers)
        self.job = {"job_id": "j1", "status": "done", "progress": 100, "mp3_fid": "m1", "error": None,
                    "filename": "clip.mp4", "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z"}
        self.events: list[tuple[str, dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Answers(BaseHTTPRequestHandler):
    server: HostileGateway

    def log_message(self, *_args):
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/download"):
            self._send(200, MP3, "audio/mpeg")
        elif self.path.endswith("/events"):
            stream = "".join(f"id: {n}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
                             for n, (name, data) in enumerate(self.server.events, 1))
            self._send(200, stream.encode(), "text/event-stream")
        elif self.path.startswith("/jobs/"):
            self._send(200, json.dumps(self.server.job).encode(), "application/json")
        else:
            self._send(200, json.dumps({"jobs": [self.server.job], "next_cursor": None}).encode(), "application/json")

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(202, json.dumps({"job_id": "j1", "video_fid": "v1", "status": "queued"}).encode(),
                   "application/json")


@pytest.fixture
def hostile():
    server = HostileGateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)


def environ(url: str, tmp_path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MP3C_")}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "MP3C_URL": url, "MP3C_TOKEN": "a-token",
            "COLUMNS": "120"}


def mp3c(url: str, tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([MP3C, *args], capture_output=True, text=True, timeout=120, env=environ(url, tmp_path))


def files_under(folder) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.parametrize(("server_name", "saved_as"), [
    ("/{outside}/stolen.mp4", "stolen.mp3"),
    ("../../escaped.mp4", "escaped.mp3"),
    ("..\\..\\escaped.mp4", "escaped.mp3"),
    ("deep/er/nested.mp4", "nested.mp3"),
    ("..", "audio.mp3"),
    ("", "audio.mp3"),
])
def test_download_saves_the_servers_file_name_only_as_a_name_in_the_output_folder(hostile, tmp_path, server_name,
                                                                                  saved_as):
    work, out, outside = tmp_path / "work", tmp_path / "work" / "out", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    hostile.job["filename"] = server_name.format(outside=str(outside).strip("/"))
    result = mp3c(hostile.url, tmp_path, "download", "j1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"saved {out / saved_as}\n"
    assert (out / saved_as).read_bytes() == MP3
    assert files_under(work) == {"out", f"out/{saved_as}"}
    assert files_under(outside) == set()


def test_download_never_follows_a_symlink_in_the_output_folder(hostile, tmp_path):
    out, victims = tmp_path / "out", tmp_path / "victims"
    out.mkdir()
    victims.mkdir()
    for name in ("part", "target"):
        (victims / name).write_bytes(b"precious")
    (out / "clip.mp3.part").symlink_to(victims / "part")  # the name the part file had
    (out / "clip.mp3").symlink_to(victims / "target")
    result = mp3c(hostile.url, tmp_path, "download", "j1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert {path.name: path.read_bytes() for path in victims.iterdir()} == {"part": b"precious", "target": b"precious"}
    assert not (out / "clip.mp3").is_symlink() and (out / "clip.mp3").read_bytes() == MP3
    assert sorted(path.name for path in out.iterdir()) == ["clip.mp3", "clip.mp3.part"]  # nothing left behind


@pytest.mark.parametrize("folder", ["a-file/mp3s", "no-such-folder/mp3s"])
def test_an_output_folder_that_cannot_be_had_is_one_line_not_a_traceback(hostile, tmp_path, folder):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "no-such-folder").mkdir(mode=0o500)  # cannot be written into, even for mp3s
    if os.geteuid() == 0 and folder.startswith("no-such"):
        (tmp_path / "no-such-folder").rmdir()
        folder = "/proc/no-such-folder/mp3s"  # where even root cannot make a folder
    target = folder if folder.startswith("/") else str(tmp_path / folder)
    result = mp3c(hostile.url, tmp_path, "download", "j1", "-o", target)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mp3c: Cannot save into {target}: "), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_jobs_in_a_terminal_shows_the_servers_text_as_text(hostile, tmp_path):
    hostile.job.update(status="failed", error="[/][red]none[/red]\x1b[5m!", filename="[blink]a[/blink][/].mp4")
    screen = run_in_terminal([MP3C, "jobs"], environ(hostile.url, tmp_path))
    assert screen.exit_code == 0, screen.text
    assert "[blink]a[/blink][/].mp4" in screen.text
    assert "[/][red]none[/red]\ufffd[5m!" in screen.text
    assert "\x1b[5m" not in screen.raw and "\x1b]8;" not in screen.raw, "the server's markup reached the terminal"


def test_jobs_through_a_pipe_writes_no_control_character_of_the_server(hostile, tmp_path):
    hostile.job.update(status="failed", error="reason\x1b]0;new window title\x07\x1b[2J", filename="clip\r\x9b2J.mp4")
    result = mp3c(hostile.url, tmp_path, "jobs")
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[1].split("\t")
    assert row[1] == "clip\ufffd\ufffd2J.mp4"
    assert row[5] == "reason\ufffd]0;new window title\ufffd\ufffd[2J"


def test_convert_in_a_terminal_shows_the_servers_states_and_reasons_as_text(hostile, tmp_path, samples):
    hostile.job.update(filename=HOSTILE_MARKUP)
    hostile.events = [("progress", {**hostile.job, "status": "[blink]converting[/blink]", "progress": 10}),
                      ("failed", {**hostile.job, "status": "failed", "error": "[/] [blink]gone[/blink]"})]
    video = tmp_path / "[reverse]my clip.mkv"  # a local name with brackets is text too
    video.write_bytes(samples["video.mkv"].read_bytes())
    screen = run_in_terminal([MP3C, "convert", str(video)], environ(hostile.url, tmp_path))
    assert screen.exit_code == 1, screen.text
    assert "[reverse]my clip.mkv: failed: [/] [blink]gone[/blink]" in screen.text
    assert "[reverse]my clip.mkv ━" in screen.text, screen.text  # its bar
    assert "\x1b[5m" not in screen.raw and "\x1b[7m" not in screen.raw, "markup reached the terminal"
