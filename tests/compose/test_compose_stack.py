"""The whole flow through the compose stack: log in, upload, the job is done, download, the MP3 decodes.

Needs a Docker engine (the first run builds four images and pulls MySQL, MongoDB, RabbitMQ and
Mailpit). Where there is none, the module is skipped and pytest's -ra summary says why.
"""

import json
import re
import subprocess
import time

import imageio_ffmpeg
import pytest
import requests

from tests.compose.engine import compose_problem, engine_problem

PROBLEM = engine_problem() or compose_problem()
if PROBLEM:
    pytest.skip(f"compose suite not run: {PROBLEM}. It needs a Docker engine.", allow_module_level=True)

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

SERVICES = ("mysql", "mongodb", "rabbitmq", "auth", "gateway", "converter", "notification", "mailpit")
VIDEO_SECONDS = 5.0


@pytest.fixture(scope="session")
def gateway(docker_ip, docker_services) -> str:
    url = f"http://{docker_ip}:{docker_services.port_for('gateway', 8080)}"

    def ready() -> bool:
        try:
            # Plain /readyz: auth, MongoDB, RabbitMQ and both consumers attached.
            return requests.get(f"{url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    docker_services.wait_until_responsive(check=ready, timeout=300, pause=2)
    return url


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "test card.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={VIDEO_SECONDS}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={VIDEO_SECONDS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def token(gateway, stack_env) -> str:
    response = requests.post(
        f"{gateway}/login", auth=(stack_env["ADMIN_EMAIL"], stack_env["ADMIN_PASSWORD"]), timeout=30
    )
    assert response.status_code == 200, response.text
    return response.text.strip()


@pytest.fixture(scope="session")
def finished_job(gateway, token, video) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with video.open("rb") as body:
        response = requests.post(
            f"{gateway}/upload", headers=headers, files={"file": (video.name, body, "video/mp4")}, timeout=120
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = requests.get(f"{gateway}/jobs/{job_id}", headers=headers, timeout=30).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(1)
    assert job["status"] == "done", f"job ended as {job}"
    return job


def test_every_container_is_healthy(gateway, stack_compose):
    output = stack_compose("ps --all --format json")
    # One JSON object per line (Compose v2.21+), or one JSON list (older).
    rows = json.loads(output) if output.lstrip().startswith("[") else [json.loads(x) for x in output.splitlines()]
    health = {row["Service"]: (row["State"], row.get("Health", "")) for row in rows}
    assert health == {name: ("running", "healthy") for name in SERVICES}


def test_upload_without_token_is_refused(gateway, video):
    with video.open("rb") as body:
        response = requests.post(f"{gateway}/upload", files={"file": (video.name, body, "video/mp4")}, timeout=60)
    assert response.status_code == 401
    assert response.json()["error"]


def test_the_mp3_downloads_and_decodes(gateway, token, finished_job, tmp_path):
    assert finished_job["progress"] == 100
    response = requests.get(
        f"{gateway}/download",
        params={"fid": finished_job["mp3_fid"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("audio/mpeg")
    assert "attachment" in response.headers.get("Content-Disposition", "")
    mp3 = tmp_path / "download.mp3"
    mp3.write_bytes(response.content)
    decoded = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(mp3), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert re.search(r"Stream #0:\d+.*: Audio: mp3", decoded.stderr), decoded.stderr
    hours, minutes, secs = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", decoded.stderr)[-1]
    duration = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    assert abs(duration - VIDEO_SECONDS) < 0.5, f"decoded {duration} s of audio"


def test_the_owner_gets_an_email_in_mailpit(docker_ip, docker_services, stack_env, finished_job):
    mailpit = f"http://{docker_ip}:{docker_services.port_for('mailpit', 8025)}"
    deadline = time.monotonic() + 60
    recipients = []
    while time.monotonic() < deadline:
        messages = requests.get(f"{mailpit}/api/v1/messages", timeout=10).json().get("messages") or []
        recipients = [to["Address"] for message in messages for to in message.get("To") or []]
        if stack_env["ADMIN_EMAIL"] in recipients:
            return
        time.sleep(1)
    pytest.fail(f"no e-mail to {stack_env['ADMIN_EMAIL']} in Mailpit (recipients: {recipients})")
