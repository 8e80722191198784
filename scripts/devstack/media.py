"""Test and benchmark videos, generated with the ffmpeg that imageio-ffmpeg ships."""

import subprocess
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
        "silent.mp4": make_video(folder / "silent.mp4", seconds, audio=False),
    }
    long_one = make_video(folder / "long.mp4", seconds * 3)
    videos["truncated.mp4"] = truncate(long_one, folder / "truncated.mp4")
    videos["text.mp4"] = folder / "text.mp4"
    videos["text.mp4"].write_text("this is not a video\n")
    videos["empty.mp4"] = folder / "empty.mp4"
    videos["empty.mp4"].write_bytes(b"")
    return videos
