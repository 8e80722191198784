"""Audio extraction with the ffmpeg binary that imageio-ffmpeg ships, reporting progress.

One ffmpeg process per file: it reads the video from a seekable temp file, or from its standard
input when the caller hands it a stream (only for containers that can be read front to back: see
converter.streamable; ffmpeg reading a non-faststart MP4 from a pipe exits 0 with an empty result),
drops every stream but the first audio one, and writes an MP3.
The result is checked against the source before it counts: a truncated video decodes "fine"
into a short MP3, so the MP3 must last as long as the source says it does.

The file is hostile until proved otherwise. ffmpeg opens it only with the demuxer of the container
the gateway recognised in its first bytes (common.formats, the same sniffing), never with whichever
of its hundreds of demuxers would like the bytes best; it reads nothing but that local file or its
standard input (no other protocol, no MOV references to other files); and it is stopped at its first progress report,
before anything is stored, when the file declares more than MAX_DURATION_SECONDS. It runs with an
empty environment (the converter's secrets stay in the converter) and under resource limits, so
that what the command line does not stop the kernel does: CPU time, file size and address space.
Its output is bounded by duration (`-t`) and size (`-fs`). Its log, which a crafted file can make as
long as it likes, is read as it comes and only its Duration line and its last LOG_TAIL_BYTES are kept.
"""

import collections
import contextlib
import functools
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import imageio_ffmpeg

from common.formats import SNIFF_BYTES, demuxer_of, demuxer_of_head
from common.telemetry import traced

# VBR around 190 kbit/s: transparent for speech and music, a third the size of 320k.
MP3_OPTIONS = ("-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-q:a", "2")
# How much shorter than the source's duration the MP3 may be: encoder padding, rounding, and
# an audio track that stops a moment before the picture.
DURATION_TOLERANCE_SECONDS = 1.0
DURATION_TOLERANCE_RATIO = 0.02

# Options of one demuxer (ffmpeg refuses an option the chosen demuxer does not have). MOV's data
# references may name other files; they are off by default, and stay off whatever the default becomes.
DEMUXER_OPTIONS = {"mov": ("-enable_drefs", "0")}
# The most an MP3 second may take: libmp3lame's highest bit rate, 320 kbit/s.
MP3_BYTES_PER_SECOND = 40_000
# Room above the output bound for the headers and ffmpeg's own log, before the kernel steps in.
FILE_SIZE_MARGIN = 16 * 1024 * 1024
# Audio extraction needs a few tens of MiB; a file that makes ffmpeg ask for more is hostile.
ADDRESS_SPACE_BYTES = 2 * 1024**3

# How much of a streamed source is handed to ffmpeg's standard input at a time.
FEED_BYTES = 1024 * 1024
STDIN = "pipe:0"

# The input's duration, as ffmpeg describes the input: indented by exactly two spaces (the input's
# metadata, which the file chooses, is indented by four).
_DURATION = re.compile(rb"  Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
# Where ffmpeg's description of the input is over: the output's follows.
_AFTER_INPUT = (b"Output #", b"Stream mapping:")
# What is kept of ffmpeg's log besides the Duration line: its end, where it says why it failed.
LOG_TAIL_BYTES = 64 * 1024
LOG_LINE_BYTES = 4096
# How long the duration may take to be read once ffmpeg has reported progress (it wrote it before).
HEADER_WAIT_SECONDS = 5


NOT_SUPPORTED = "The file is not a video in a supported format (mp4, mov, mkv, webm, avi, wmv, mpeg, flv)."


class ConversionFailed(Exception):
    """The file cannot be converted, now or ever; the message is for the file's owner."""


class Cancelled(Exception):
    """The conversion was stopped before it finished (shutdown or lost connection)."""


@dataclass(frozen=True)
class Conversion:
    source_seconds: float | None
    mp3_seconds: float


@dataclass(frozen=True)
class Limits:
    """How much one file may take: MAX_DURATION_SECONDS of audio, CONVERT_TIMEOUT_SECONDS of CPU."""

    max_duration_seconds: int
    cpu_seconds: int

    @property
    def output_bytes(self) -> int:
        return self.max_duration_seconds * MP3_BYTES_PER_SECOND + 1024 * 1024

    def apply(self) -> None:
        """Run in the child between fork and exec: only setrlimit calls, nothing that takes a lock."""
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.output_bytes + FILE_SIZE_MARGIN,) * 2)
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES,) * 2)


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def command(source: Path | str, target: Path, demuxer: str, limits: Limits) -> list[str]:
    """Read with this demuxer and no other, from this file (or standard input) and nothing else."""
    protocol = "pipe" if source == STDIN else "file"
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-format_whitelist", demuxer, "-f", demuxer,
            "-protocol_whitelist", protocol, *DEMUXER_OPTIONS.get(demuxer, ()), "-i", str(source), *MP3_OPTIONS,
            # One second past the bound: an MP3 longer than the bound shows the source was too long.
            "-t", str(limits.max_duration_seconds + 1), "-fs", str(limits.output_bytes),
            "-progress", "pipe:1", "-stats_period", "0.5", "-nostats", str(target)]


def sandboxed(limits: Limits) -> dict:
    """How every ffmpeg runs: nothing of the converter's environment, and the kernel's limits."""
    return {"env": {}, "preexec_fn": functools.partial(Limits.apply, limits), "close_fds": True}


def source_duration(line: bytes) -> float | None:
    """The duration in ffmpeg's description of its input, when this line of its log is that."""
    match = _DURATION.match(line)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class _Log(threading.Thread):
    """Reads ffmpeg's standard error as it comes, keeping the duration the source declares (None when it
    declares none) and the last LOG_TAIL_BYTES; `described` is set once the input's description is over."""

    def __init__(self, stream):
        super().__init__(name="ffmpeg-log", daemon=True)
        self._stream = stream
        self.duration: float | None = None
        self.described = threading.Event()
        self._tail: collections.deque[bytes] = collections.deque()
        self._held = 0

    def run(self):
        try:
            while line := self._stream.readline(LOG_LINE_BYTES):
                if not self.described.is_set():
                    self.duration = self.duration or source_duration(line)
                    if line.startswith(_AFTER_INPUT):
                        self.described.set()
                self._tail.append(line)
                self._held += len(line)
                while self._held > LOG_TAIL_BYTES:
                    self._held -= len(self._tail.popleft())
        finally:
            self.described.set()

    def tail(self) -> bytes:
        """The end of the log (once the thread is done)."""
        return b"".join(self._tail)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@traced("ffmpeg")
def convert(source: Path | BinaryIO, target: Path, *, cancel: threading.Event, timeout: float, max_duration: int,
            on_progress: Callable[[int], None] = lambda percent: None) -> Conversion:
    """source: a file, or a seekable stream (a GridFS download) that ffmpeg reads through its standard
    input. An error while reading the stream stops ffmpeg and is raised as it is."""
    limits = Limits(max_duration_seconds=max_duration, cpu_seconds=int(timeout))
    streamed = not isinstance(source, Path)
    demuxer = _demuxer_of_stream(source) if streamed else demuxer_of(source)
    if demuxer is None:
        raise ConversionFailed(NOT_SUPPORTED)
    process = subprocess.Popen(command(STDIN if streamed else source, target, demuxer, limits),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.PIPE if streamed else subprocess.DEVNULL, **sandboxed(limits))
    log = _Log(process.stderr)
    log.start()
    feeding = _feed(process, source) if streamed else None
    stopped = _watch(process, cancel, time.monotonic() + timeout)
    out_seconds, declared = _follow_progress(process, log, on_progress, limits.max_duration_seconds)
    process.wait()
    log.join()
    process.stderr.close()
    if feeding is not None:
        feeding.join()
        if feeding.error is not None:
            raise feeding.error
    if declared is not None and declared > limits.max_duration_seconds:
        raise ConversionFailed(f"The video lasts {_clock(declared)}; videos up to "
                               f"{_clock(limits.max_duration_seconds)} are converted.")
    if stopped.is_set():
        if cancel.is_set():
            raise Cancelled("the conversion was stopped")
        raise ConversionFailed(f"the conversion took longer than {timeout:.0f} s")
    if process.returncode == -signal.SIGXCPU:
        raise ConversionFailed(f"The conversion used more than {limits.cpu_seconds} s of CPU time.")
    if process.returncode == -signal.SIGXFSZ:
        raise ConversionFailed("The conversion wrote more than a video of the longest accepted length could need.")
    if process.returncode != 0:
        raise ConversionFailed(explain(log.tail()))
    if out_seconds > limits.max_duration_seconds:  # a source that declares no duration, or lies about it
        raise ConversionFailed(f"The video lasts longer than {_clock(limits.max_duration_seconds)}, "
                               "the longest converted.")
    return checked(Conversion(log.duration, out_seconds), target)


def _demuxer_of_stream(source: BinaryIO) -> str | None:
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    return demuxer_of_head(head)


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


def _follow_progress(process: subprocess.Popen, log: _Log, on_progress,
                     max_duration: int) -> tuple[float, float | None]:
    """Read ffmpeg's -progress lines; returns how many seconds of audio it wrote, and the duration the
    source declares. At the first report (ffmpeg has printed the header by then) a source declaring
    more than max_duration stops ffmpeg."""
    duration = None
    out_seconds = 0.0
    for line in process.stdout:
        key, _, value = line.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            out_seconds = max(out_seconds, int(value) / 1_000_000)
        elif key == "progress":
            if duration is None:
                log.described.wait(HEADER_WAIT_SECONDS)
                duration = log.duration or 0.0
                if duration > max_duration:
                    process.kill()
                    break
            # Reported even when the source declares no duration: the caller may stop the work.
            on_progress(min(99, int(100 * out_seconds / duration)) if duration else 0)
    return out_seconds, duration or None


def explain(log: bytes) -> str:
    """A reason the owner of the file understands, from ffmpeg's error output."""
    text = log.decode(errors="replace")
    if "Format not on whitelist" in text:
        return NOT_SUPPORTED
    if "Cannot allocate memory" in text:
        return "The file needs more memory to decode than a video of its kind could need."
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
