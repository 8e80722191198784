"""What the compose and watch suites do to a running stack: make videos, wait for a job, count
a job's MP3s in MongoDB (with the image's own mongosh, as an operator would)."""

import subprocess
import time
from pathlib import Path

import imageio_ffmpeg


def video(path: Path, seconds: float, size: str = "320x240", rate: int = 25) -> Path:
    """An MP4 with a test card and a 440 Hz tone; a long one at a tiny size converts for several seconds
    (its sound is mono at a low bitrate, so that an hour of it is a small file)."""
    sound = ["-ac", "1", "-b:a", "32k"] if seconds > 60 else []
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", *sound, "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=300,
    )  # fmt: skip
    return path


def wait_status(client, job_id: str, statuses: tuple[str, ...], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        response = client.job(job_id)
        if response.status_code == 200:
            job = response.json()
            if job["status"] in statuses:
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not {' or '.join(statuses)} after {timeout} s: {job}")


def mp3_count(compose, env: dict, job_id: str) -> int:
    """How many MP3s GridFS holds for the job (`compose` runs a compose subcommand, returns stdout)."""
    script = f"db.getCollection('mp3s.files').countDocuments({{'metadata.job_id': '{job_id}'}})"
    output = compose(
        f"exec -T mongodb mongosh --quiet -u {env['MONGO_ROOT_USER']} -p {env['MONGO_ROOT_PASSWORD']}"
        f" --authenticationDatabase admin {env['MONGODB_DB']} --eval \"{script}\""
    )
    return int(output.strip().splitlines()[-1])
