"""What the compose and watch suites do to a running stack: make videos, wait for the gateway, count
a job's MP3s in MongoDB (with the image's own mongosh, as an operator would)."""

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import requests

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# Compose's own settings would change which files, profiles or project it uses.
COMPOSE_SETTINGS = ("COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES")


def compose_sees_only(env_values: dict) -> list[str]:
    """`env -u ...`: compose prefers the environment to the .env file, so every variable the file sets
    (and compose's own settings) is removed from the compose command's environment."""
    return ["env", *[arg for name in sorted({*env_values, *COMPOSE_SETTINGS}) for arg in ("-u", name)]]


def copy_tree(target: Path, repository: bool = False) -> Path:
    """The project's files as git sees them (tracked and new, not ignored): no .venv, no .env; with
    `repository`, in a git repository of its own, as a checkout is."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    if repository:
        subprocess.run(["git", "init", "--quiet"], cwd=target, check=True)
        subprocess.run(["git", "add", "--all"], cwd=target, check=True)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_env(path: Path) -> dict:
    return {m.group(1): m.group(2) for line in path.read_text().splitlines() if (m := ASSIGNMENT.match(line))}


def write_stack_env(path: Path, **overrides: str) -> Path:
    """A .env from scripts/init-env with free host ports (a stack already running on 8080, 15672 or 8025
    does not get in the way) and the notification e-mails sent to Mailpit (profile `mail`)."""
    subprocess.run([sys.executable, str(ROOT / "scripts/init-env"), "--output", str(path)], check=True,
                   capture_output=True)
    values = read_env(path)
    values.update({
        "GATEWAY_PORT": str(free_port()), "RABBITMQ_UI_PORT": str(free_port()), "MAILPIT_UI_PORT": str(free_port()),
        "SMTP_HOST": "mailpit", "SMTP_PORT": "1025", "SMTP_USER": "", "SMTP_PASSWORD": "", "SMTP_STARTTLS": "false",
    }, **overrides)  # fmt: skip
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


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


def readiness(url: str) -> tuple[int, dict]:
    try:
        response = requests.get(f"{url}/readyz", timeout=10)
        return response.status_code, response.json()
    except (requests.RequestException, ValueError) as exc:
        return 0, {"error": str(exc)}


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = readiness(url)
        if status == 200:
            return
        time.sleep(1)
    raise AssertionError(f"{url}/readyz not ready after {timeout} s: {status} {body}")


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
