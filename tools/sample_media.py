"""Test and benchmark videos, generated with the ffmpeg that imageio-ffmpeg ships."""

import hashlib
import inspect
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg


def make_video(path: Path, seconds: float, *, size: str = "320x240", rate: int = 25, audio: bool = True,
               faststart: bool = True, video_codec: str = "libx264", audio_codec: str = "aac") -> Path:
    """A test pattern with a sine tone, in the container that path's suffix names."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    command += ["-c:v", video_codec, "-preset", "ultrafast", "-pix_fmt", "yuv420p"] if video_codec == "libx264" \
        else ["-c:v", video_codec]
    if audio:
        command += ["-c:a", audio_codec, "-shortest"]
    if faststart and path.suffix in (".mp4", ".mov"):
        command += ["-movflags", "+faststart"]
    subprocess.run([*command, str(path)], check=True)
    return path


def truncate(source: Path, target: Path, fraction: float = 0.4) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def audio_seconds(path: Path) -> float:
    """How long the audio in a file really lasts, by decoding all of it."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    result = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "null", "-",
                             "-progress", "pipe:1", "-nostats"], capture_output=True, check=True)
    times = [int(line.split(b"=")[1]) for line in result.stdout.splitlines()
             if line.startswith(b"out_time_us=") and line.split(b"=")[1].isdigit()]
    return max(times) / 1_000_000


def sample_set(folder: Path, seconds: float = 4) -> dict[str, Path]:
    """Every kind of upload the tests try, good and bad, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = {
        "faststart.mp4": make_video(folder / "faststart.mp4", seconds),
        "plain.mp4": make_video(folder / "plain.mp4", seconds, faststart=False),
        "video.mkv": make_video(folder / "video.mkv", seconds, audio_codec="libmp3lame"),
        "video.mov": make_video(folder / "video.mov", seconds),
        "video.webm": make_video(folder / "video.webm", seconds, video_codec="libvpx", audio_codec="libopus"),
        "silent.mp4": make_video(folder / "silent.mp4", seconds, audio=False),
    }
    long_one = make_video(folder / "long.mp4", seconds * 3)
    videos["truncated.mp4"] = truncate(long_one, folder / "truncated.mp4")
    long_one.unlink()
    videos["text.mp4"] = folder / "text.mp4"
    videos["text.mp4"].write_text("this is not a video\n")
    videos["empty.mp4"] = folder / "empty.mp4"
    videos["empty.mp4"].write_bytes(b"")
    return videos


def cache_key(seconds: float) -> str:
    """What the samples depend on: the ffmpeg that makes them (its version line) and how they are made."""
    version = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True, check=True)
    recipe = "".join(inspect.getsource(f) for f in (make_video, truncate, sample_set))
    parts = [version.stdout.splitlines()[0], recipe.encode(), str(seconds).encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def cached_sample_set(cache: Path, seconds: float = 4) -> dict[str, Path]:
    """sample_set, made once per ffmpeg version and kept under CACHE: generating them takes a quarter of a
    minute of CPU, reading them back nothing. The files are read-only, so that no test changes what the
    next run gets. Several processes may ask at once (pytest-xdist's workers): each makes its own copy
    and the first to rename it into place wins."""
    folder = cache / f"samples-{cache_key(seconds)}"
    if not folder.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=cache))
        for path in sample_set(fresh, seconds).values():
            path.chmod(0o444)
        try:
            fresh.rename(folder)
        except OSError:  # made meanwhile by another process
            shutil.rmtree(fresh)
    return {path.name: path for path in sorted(folder.iterdir())}


def default_cache() -> Path:
    """Where the cached samples go: $XDG_CACHE_HOME/mp3converter, else ~/.cache/mp3converter."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mp3converter"


def module_posing_as_matroska(path: Path) -> Path:
    """A 4,108-byte ProTracker module that byte sniffing takes for Matroska, and that decodes for 88 hours.

    Its 20-byte title starts with the EBML magic, and the name of its second sample is a Matroska DocType
    element: that is all `filetype` looks for. ffmpeg's own Matroska probe rejects the header (a zero
    length byte), so ffmpeg picks its tracker decoder instead. Its one pattern runs at the slowest
    speed and tempo and delays every row 15 times, and its order list plays that pattern 128 times:
    ffmpeg's tracker decoder declares 88:10:40.
    """
    title = b"\x1a\x45\xdf\xa3\x00 not a video"
    samples = [b"tone".ljust(22, b"\0") + (1000).to_bytes(2, "big") + bytes([0, 64]) + (0).to_bytes(2, "big")
               + (1000).to_bytes(2, "big")]
    empty = bytes([0, 0, 0, 0, 0, 0, 0, 1])
    samples += [b"\x42\x82\x88matroska".ljust(22, b"\0") + empty] + [bytes(22) + empty] * 29
    header = title.ljust(20, b"\0") + b"".join(samples) + bytes([128, 127]) + bytes(128) + b"M.K."

    def cell(sample: int, period: int, effect: int, parameter: int) -> bytes:
        return bytes([(sample & 0xF0) | (period >> 8), period & 0xFF, ((sample & 0x0F) << 4) | effect, parameter])

    rows = []
    for row in range(64):
        speed = cell(0, 0, 0xF, 0x1F) if row == 0 else bytes(4)  # 31 ticks a row
        tempo = cell(0, 0, 0xF, 0x20) if row == 0 else bytes(4)  # 32 BPM
        rows.append(cell(1, 428, 0xE, 0xEF) + speed + tempo + bytes(4))  # a note, and "delay this row 15 times"
    sample_data = bytes((i * 7) % 256 for i in range(2000))
    path.write_bytes(header + b"".join(rows) + sample_data)
    return path


def box_claiming_two_to_the_64(path: Path | None = None) -> bytes:
    """An MP4 whose second top-level box claims a 64-bit size near 2**64 (size 1, then the largesize
    0xFFFFFFFFFFFFFFF0): `filetype` takes it for MP4, and a reader that trusts box sizes seeks past any
    file. Written to `path` when given."""
    ftyp = struct.pack(">I4s", 24, b"ftyp") + b"isom" + b"\x00\x00\x02\x00" + b"isomiso2"
    data = ftyp + struct.pack(">I4sQ", 1, b"free", 0xFFFFFFFFFFFFFFF0) + bytes(4096)
    if path is not None:
        path.write_bytes(data)
    return data
