"""Generated benchmark inputs, cached under .bench/inputs/ by their parameters.

Everything is made by the ffmpeg that imageio-ffmpeg ships, so every machine gets the same inputs.
A file is written under a temporary name and renamed when complete: an interrupted run never
leaves a broken input in the cache.
"""

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from bench.util import BENCH_DIR, MB
from sample_media import make_video

INPUTS = BENCH_DIR / "inputs"


@dataclass(frozen=True)
class Video:
    """A test pattern with a 440 Hz tone: `seconds` long, `size` pixels, `rate` frames a second."""

    label: str
    seconds: float
    size: str
    rate: int
    audio_codec: str = "aac"

    @property
    def path(self) -> Path:
        return INPUTS / f"pattern-{self.seconds:g}s-{self.size}-{self.rate}fps-{self.audio_codec}.mp4"

    def ensure(self) -> Path:
        if not self.path.exists():
            _say(f"generating {self.label} ({self.path.name})")
            INPUTS.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name("partial-" + self.path.name)
            started = time.monotonic()
            make_video(partial, self.seconds, size=self.size, rate=self.rate, audio_codec=self.audio_codec)
            partial.rename(self.path)
            _say(f"  {self.path.stat().st_size / MB:.1f} MB in {time.monotonic() - started:.0f} s")
        return self.path


# A second of 720p noise, MPEG-4 part 2 at its best quality, is about 27 MB: the cheapest way to
# many bytes that are still a valid video (the demuxer and GridFS see every byte; the noise does
# not compress). Repeating it by stream copy costs only the disk writes.
NOISE_SEGMENT_SECONDS = 1


@dataclass(frozen=True)
class BigVideo:
    """A valid MP4 of about `megabytes` MB: one noisy segment, repeated by stream copy. Its index
    (moov) is at the end unless `faststart`: the converter pipes a faststart one into ffmpeg."""

    megabytes: int
    faststart: bool = False

    @property
    def label(self) -> str:
        return f"{self.megabytes // 1000} GB" if self.megabytes >= 1000 else f"{self.megabytes} MB"

    @property
    def path(self) -> Path:
        return INPUTS / f"noise-{self.megabytes}MB{'-faststart' if self.faststart else ''}.mp4"

    def ensure(self) -> Path:
        if self.path.exists():
            return self.path
        if self.faststart:
            plain = BigVideo(self.megabytes).ensure()
            partial = self.path.with_name("partial-" + self.path.name)
            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(plain), "-c", "copy",
                            "-movflags", "+faststart", str(partial)], check=True)
            partial.rename(self.path)
            return self.path
        INPUTS.mkdir(parents=True, exist_ok=True)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        segment = INPUTS / f"noise-segment-{NOISE_SEGMENT_SECONDS}s.mp4"
        if not segment.exists():
            partial = segment.with_name("partial-" + segment.name)
            subprocess.run([
                ffmpeg, "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={NOISE_SEGMENT_SECONDS},"
                                     "noise=alls=100:allf=t+u",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={NOISE_SEGMENT_SECONDS}",
                "-c:v", "mpeg4", "-q:v", "1", "-c:a", "aac", "-shortest", str(partial)], check=True)
            partial.rename(segment)
        _say(f"generating a {self.label} video ({self.path.name})")
        started = time.monotonic()
        repeats = math.ceil(self.megabytes * MB / segment.stat().st_size) + 1
        partial = self.path.with_name("partial-" + self.path.name)
        # -fs ends the file (properly, with its index) once it holds that many bytes.
        subprocess.run([ffmpeg, "-v", "error", "-y", "-stream_loop", str(repeats - 1), "-i", str(segment),
                        "-c", "copy", "-fs", str(self.megabytes * MB), str(partial)], check=True)
        partial.rename(self.path)
        _say(f"  {self.path.stat().st_size / MB:.0f} MB in {time.monotonic() - started:.0f} s")
        return self.path


@dataclass(frozen=True)
class RealisticVideo:
    """A video at a phone's or a camera's bit rate: `seconds` long, H.264 at `megabits` Mbit/s
    (constant: the picture is noisy so that the encoder spends every bit), AAC audio, with the MP4
    index (moov) at the front (faststart) or at the end, as most cameras write it.

    A `segment` of picture is encoded once and repeated by stream copy; the audio is encoded whole,
    as the conversion decodes all of it.
    """

    label: str
    seconds: int
    size: str
    megabits: float
    faststart: bool
    segment: int = 10

    @property
    def path(self) -> Path:
        index = "faststart" if self.faststart else "moov-at-end"
        return INPUTS / f"camera-{self.seconds}s-{self.size}-{self.megabits:g}mbit-{index}.mp4"

    def ensure(self) -> Path:
        if self.path.exists():
            return self.path
        INPUTS.mkdir(parents=True, exist_ok=True)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        _say(f"generating {self.label} ({self.path.name})")
        started = time.monotonic()
        rate = f"{self.megabits:g}M"
        segment = INPUTS / f"partial-segment-{self.path.stem}.mp4"
        subprocess.run([
            ffmpeg, "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={self.size}:rate=25:duration={self.segment},noise=alls=30:allf=t+u",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate, "-x264-params", "nal-hrd=cbr",
            str(segment)], check=True)
        partial = self.path.with_name("partial-" + self.path.name)
        subprocess.run([
            ffmpeg, "-v", "error", "-y",
            "-stream_loop", str(math.ceil(self.seconds / self.segment) - 1), "-i", str(segment),
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={self.seconds}",
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-t", str(self.seconds),
            *(["-movflags", "+faststart"] if self.faststart else []), str(partial)], check=True)
        segment.unlink()
        partial.rename(self.path)
        _say(f"  {self.path.stat().st_size / MB:.0f} MB in {time.monotonic() - started:.0f} s")
        return self.path


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
