"""scripts/smoke [URL]: one pass through the whole flow against a running stack, step by step.

Logs in, makes a short video itself, uploads it, follows the job's events until it is done, downloads
the MP3, checks that it lasts as long as the video, and deletes the job. Each step is printed with its
time; the exit status is 0 only when every step passed, else 1 after naming the failing step and why.

Works against any of the four ways of running the stack (compose, Tilt, the devcontainer, run-local):
URL defaults to http://localhost:GATEWAY_PORT from .env. The account is --email/--password, else
ADMIN_EMAIL/ADMIN_PASSWORD from the environment, else from .env.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values

from mp3c.errors import Cancelled, Mp3cError
from mp3c.gateway import Gateway
from sample_media import audio_seconds, make_video

ROOT = Path(__file__).resolve().parents[1]
VIDEO_SECONDS = 3
# How far the MP3's length may stray from the video's (encoder padding, frame boundaries).
DURATION_TOLERANCE = 0.5


class StepFailed(Exception):
    pass


class Smoke:
    """The steps, in order; each returns what the next needs and raises on what a user would call broken."""

    def __init__(self, url: str, email: str, password: str, workdir: Path, timeout: float):
        self.gateway = Gateway(url)
        self.email, self.password = email, password
        self.workdir = workdir
        self.timeout = timeout

    def login(self) -> str:
        self.gateway = Gateway(self.gateway.url, self.gateway.login(self.email, self.password))
        return f"as {self.email}"

    def make_video(self) -> str:
        self.video = make_video(self.workdir / "smoke.mp4", VIDEO_SECONDS, size="160x120", rate=10)
        return f"{VIDEO_SECONDS} s, {self.video.stat().st_size} bytes"

    def upload(self) -> str:
        answer = self.gateway.upload(self.video, lambda _n: None, threading.Event())
        self.job_id = answer["job_id"]
        return f"job {self.job_id}, {answer['status']}"

    def follow_events(self) -> str:
        seen: list[str] = []
        gave_up = threading.Event()
        timer = threading.Timer(self.timeout, gave_up.set)
        timer.start()
        try:
            job = self.gateway.follow(self.job_id, lambda event, _job: seen.append(event), gave_up)
        except Cancelled:
            events = ", ".join(seen) or "none"
            raise StepFailed(f"no final event within {self.timeout:.0f} s (events: {events})") from None
        finally:
            timer.cancel()
        if job["status"] != "done":
            raise StepFailed(f"the job ended {job['status']}: {job.get('error')}")
        self.mp3_fid = job["mp3_fid"]
        return f"{len(seen)} events, the last `{seen[-1]}`"

    def download(self) -> str:
        self.mp3 = self.gateway.download(self.mp3_fid, self.workdir / "smoke.mp3")
        return f"{self.mp3.stat().st_size} bytes"

    def check_duration(self) -> str:
        seconds = audio_seconds(self.mp3)
        if abs(seconds - VIDEO_SECONDS) > DURATION_TOLERANCE:
            raise StepFailed(f"the MP3 lasts {seconds:.2f} s, the video {VIDEO_SECONDS} s")
        return f"{seconds:.2f} s"

    def delete(self) -> str:
        self.gateway.delete(self.job_id)
        try:
            self.gateway.job(self.job_id)
        except Mp3cError as error:
            if getattr(error, "status", None) == 404:
                return "gone"
            raise
        raise StepFailed("the job is still there after DELETE")

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [("log in", self.login), ("make a video", self.make_video), ("upload", self.upload),
                ("follow its events", self.follow_events), ("download the MP3", self.download),
                ("check its duration", self.check_duration), ("delete the job", self.delete)]


def run(smoke: Smoke, out=sys.stdout) -> int:
    started = time.monotonic()
    for name, step in smoke.steps():
        began = time.monotonic()
        try:
            detail = step()
        except (StepFailed, Mp3cError, OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
            print(f"FAIL  {name:<20} {time.monotonic() - began:6.2f} s  {reason(error)}", file=out, flush=True)
            print(f"smoke: failed at '{name}'", file=out, flush=True)
            return 1
        print(f"ok    {name:<20} {time.monotonic() - began:6.2f} s  {detail}", file=out, flush=True)
    print(f"smoke: all passed in {time.monotonic() - started:.2f} s", file=out, flush=True)
    return 0


def reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    status = getattr(error, "status", None)
    return f"HTTP {status}: {text}" if status else text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", help="the gateway (default: http://localhost:GATEWAY_PORT from .env)")
    parser.add_argument("--email", help="default: ADMIN_EMAIL")
    parser.add_argument("--password", help="default: ADMIN_PASSWORD")
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env", help="default: .env")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the conversion (300)")
    args = parser.parse_args(argv)
    dotenv = dotenv_values(args.env_file) if args.env_file.exists() else {}

    def setting(name: str, default: str | None = None) -> str | None:
        return os.environ.get(name) or dotenv.get(name) or default

    url = args.url or f"http://localhost:{setting('GATEWAY_PORT', '8080')}"
    email, password = args.email or setting("ADMIN_EMAIL"), args.password or setting("ADMIN_PASSWORD")
    if not email or not password:
        print("smoke: no account: pass --email and --password, or set ADMIN_EMAIL and ADMIN_PASSWORD "
              "(scripts/init-env writes them to .env)", file=sys.stderr)
        return 2
    print(f"smoke: {url}", flush=True)
    with tempfile.TemporaryDirectory(prefix="smoke-") as workdir:
        return run(Smoke(url, email, password, Path(workdir), args.timeout))


if __name__ == "__main__":
    sys.exit(main())
