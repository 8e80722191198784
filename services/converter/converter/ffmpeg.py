"""Audio extraction with the ffmpeg binary that imageio-ffmpeg ships, reporting progress.

One ffmpeg process per file: it reads the video from a seekable temp file, or from its standard
input when the caller hands it a stream (only for containers that can be read front to back: see
converter.containers; ffmpeg reading a non-faststart MP4 from a pipe exits 0 with an empty result),
drops every stream but the first audio one, and writes an MP3.
The result is checked against the source before it counts: a truncated video decodes "fine"
into a short MP3, so the MP3 must last as long as the source says it does.
"""

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import imageio_ffmpeg

from common.telemetry import traced

# VBR around 190 kbit/s: transparent for speech and music, a third the size of 320k.
MP3_OPTIONS = ("-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-q:a", "2")
# How much shorter than the source's duration the MP3 may be: encoder padding, rounding, and
# an audio track that stops a moment before the picture.
DURATION_TOLERANCE_SECONDS = 1.0
DURATION_TOLERANCE_RATIO = 0.02

# How much of a streamed source is handed to ffmpeg's standard input at a time.
FEED_BYTES = 1024 * 1024
STDIN = "pipe:0"

_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


class ConversionFailed(Exception):
    """The file cannot be converted, now or ever; the message is for the file's owner."""


class Cancelled(Exception):
    """The conversion was stopped before it finished (shutdown or lost connection)."""


@dataclass(frozen=True)
class Conversion:
    source_seconds: float | None
    mp3_seconds: float


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def command(source: Path | str, target: Path) -> list[str]:
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-i", str(source), *MP3_OPTIONS,
            "-progress", "pipe:1", "-stats_period", "0.5", "-nostats", str(target)]


def source_duration(stderr: bytes) -> float | None:
    match = _DURATION.search(stderr)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@traced("ffmpeg")
def convert(source: Path | BinaryIO, target: Path, *, cancel: threading.Event, timeout: float,
            on_progress: Callable[[int], None] = lambda percent: None) -> Conversion:
    """source: a file, or a stream that ffmpeg reads through its standard input. An error while
    reading the stream stops ffmpeg and is raised as it is."""
    streamed = not isinstance(source, Path)
    stderr_path = target.with_suffix(".log")
    with stderr_path.open("w+b") as stderr:
        process = subprocess.Popen(command(STDIN if streamed else source, target), stdout=subprocess.PIPE,
                                   stderr=stderr, stdin=subprocess.PIPE if streamed else subprocess.DEVNULL)
        feeding = _feed(process, source) if streamed else None
        stopped = _watch(process, cancel, time.monotonic() + timeout)
        out_seconds = _follow_progress(process, stderr, on_progress)
        process.wait()
        stderr.seek(0)
        log = stderr.read()
    stderr_path.unlink(missing_ok=True)
    if feeding is not None:
        feeding.join()
        if feeding.error is not None:
            raise feeding.error
    if stopped.is_set():
        if cancel.is_set():
            raise Cancelled("the conversion was stopped")
        raise ConversionFailed(f"the conversion took longer than {timeout:.0f} s")
    if process.returncode != 0:
        raise ConversionFailed(explain(log))
    return checked(Conversion(source_duration(log), out_seconds), target)


class _Feeder(threading.Thread):
    """Copies the source into ffmpeg's standard input; on a read error it stops ffmpeg and keeps the error."""

    def __init__(self, process: subprocess.Popen, source: BinaryIO):
        super().__init__(name="ffmpeg-feed", daemon=True)
        self.process, self.source, self.error = process, source, None

    def run(self):
        try:
            shutil.copyfileobj(self.source, self.process.stdin, FEED_BYTES)
        except (BrokenPipeError, ConnectionResetError):
            pass  # ffmpeg stopped reading: it failed or was stopped, which its exit status tells
        except BaseException as error:  # handed to the caller, which raises it
            self.error = error
            self.process.kill()
        finally:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


def _feed(process: subprocess.Popen, source: BinaryIO) -> _Feeder:
    feeder = _Feeder(process, source)
    feeder.start()
    return feeder


def _watch(process: subprocess.Popen, cancel: threading.Event, deadline: float) -> threading.Event:
    """Kill ffmpeg when the work is cancelled or the deadline passes; says whether it did."""
    stopped = threading.Event()

    def watch():
        while process.poll() is None:
            if cancel.wait(0.2) or time.monotonic() > deadline:
                stopped.set()
                process.kill()
                return

    threading.Thread(target=watch, name="ffmpeg-watch", daemon=True).start()
    return stopped


def _follow_progress(process: subprocess.Popen, stderr, on_progress) -> float:
    """Read ffmpeg's -progress lines; returns how many seconds of audio it wrote."""
    duration = None
    out_seconds = 0.0
    for line in process.stdout:
        key, _, value = line.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            out_seconds = max(out_seconds, int(value) / 1_000_000)
        elif key == "progress":
            if duration is None:
                stderr.flush()
                duration = source_duration(Path(stderr.name).read_bytes()) or 0.0
            # Reported even when the source declares no duration: the caller may stop the work.
            on_progress(min(99, int(100 * out_seconds / duration)) if duration else 0)
    return out_seconds


def explain(log: bytes) -> str:
    """A reason the owner of the file understands, from ffmpeg's error output."""
    text = log.decode(errors="replace")
    if "matches no streams" in text or "does not contain any stream" in text:
        return "The video has no audio track."
    if "moov atom not found" in text or "Invalid data found when processing input" in text:
        return "The file is corrupt or truncated: ffmpeg cannot read it as a video."
    last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
    return f"ffmpeg could not convert the file: {last[0].strip()[:300]}"


def checked(result: Conversion, target: Path) -> Conversion:
    if not target.exists() or target.stat().st_size == 0 or result.mp3_seconds <= 0:
        raise ConversionFailed("The file holds no audio that could be decoded.")
    expected = result.source_seconds
    if expected:
        tolerance = max(DURATION_TOLERANCE_SECONDS, DURATION_TOLERANCE_RATIO * expected)
        if result.mp3_seconds < expected - tolerance:
            raise ConversionFailed(
                f"The file is truncated: its audio stops at {result.mp3_seconds:.1f} s "
                f"of the {expected:.1f} s it declares."
            )
    return result
