"""The whole flow through the compose stack, from compose.yaml as it is: every container healthy; log
in, upload, the job is done, download, the MP3 decodes with the source's duration; e-mail in Mailpit.

Needs a Docker engine (tests/containers.py starts one where it can); the first run builds the four
images (and the stand-ins where no registry is reachable).
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
import requests

from compose_project import wait_ready
from tests.compose.stack import video
from tests.servers import Client

pytestmark = pytest.mark.timeout(1800)

SERVICES = ("mysql", "mongodb", "rabbitmq", "auth", "gateway", "converter", "notification", "mailpit")
VIDEO_SECONDS = 5.0


@pytest.fixture(scope="session")
def gateway(docker_ip, docker_services) -> str:
    url = f"http://{docker_ip}:{docker_services.port_for('gateway', 8080)}"
    wait_ready(url)  # plain /readyz: auth, MongoDB, RabbitMQ and both consumers attached
    return url


@pytest.fixture(scope="session")
def short_video(tmp_path_factory):
    return video(tmp_path_factory.mktemp("media") / "test card.mp4", VIDEO_SECONDS)


@pytest.fixture(scope="session")
def client(gateway, stack_env) -> Client:
    return Client.as_admin(gateway, stack_env)


@pytest.fixture(scope="session")
def finished_job(client, short_video) -> dict:
    response = client.upload(short_video)
    assert response.status_code == 202, response.text
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.job(response.json()["job_id"]).json()
        seen.append((job["status"], job["progress"]))
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", f"job ended as {job}"
    job["seen"] = seen
    return job


def test_every_container_is_healthy(gateway, stack_compose):
    output = stack_compose("ps --all --format json")
    # One JSON object per line (Compose v2.21+), or one JSON list (older).
    rows = json.loads(output) if output.lstrip().startswith("[") else [json.loads(x) for x in output.splitlines()]
    health = {row["Service"]: (row["State"], row.get("Health", "")) for row in rows}
    assert health == {name: ("running", "healthy") for name in SERVICES}


def test_the_gateway_is_published_on_127_0_0_1(gateway):
    assert gateway.startswith("http://127.0.0.1:")
    assert requests.get(f"{gateway}/healthz", timeout=10).json() == {"status": "ok"}


def test_upload_without_token_is_refused(gateway, short_video):
    assert Client(gateway).upload(short_video).status_code == 401


def test_a_text_file_is_refused_as_not_a_video(client, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video, only text\n" * 100)
    response = client.upload(text)
    assert response.status_code == 415, response.text
    assert response.json()["error"]


def test_the_job_shows_progress_until_done(finished_job):
    statuses = [status for status, _ in finished_job["seen"]]
    assert statuses[0] in ("queued", "converting", "done")
    assert statuses[-1] == "done"
    assert finished_job["progress"] == 100
    assert [p for _, p in finished_job["seen"]] == sorted(p for _, p in finished_job["seen"])


def test_the_mp3_downloads_and_decodes_with_the_source_duration(client, finished_job, tmp_path):
    response = client.download(finished_job["mp3_fid"])
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("audio/mpeg")
    assert "test card.mp3" in response.headers.get("Content-Disposition", "")
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


def test_the_events_stream_and_the_page_through_the_stack(gateway, client, finished_job):
    """The image's gevent worker, with the real MongoDB and RabbitMQ drivers under it."""
    from tests.sse import read_events

    url = f"{gateway}/jobs/{finished_job['job_id']}/events"
    with requests.get(url, headers=client.headers(), stream=True, timeout=30) as response:
        assert response.status_code == 200
        events, _ = read_events(response)
    assert [(e.name, e.data["mp3_fid"]) for e in events] == [("done", finished_job["mp3_fid"])]
    page = requests.get(f"{gateway}/", timeout=30)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_mp3c_converts_through_the_stack(gateway, stack_env, short_video, tmp_path):
    mp3c = str(Path(__file__).resolve().parents[2] / "scripts/mp3c")
    env = {**os.environ, "MP3C_URL": gateway, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    login = subprocess.run([mp3c, "login", "--email", stack_env["ADMIN_EMAIL"]], env=env, capture_output=True,
                           input=f"{stack_env['ADMIN_PASSWORD']}\n", text=True, timeout=120)
    assert login.returncode == 0, login.stderr
    result = subprocess.run([mp3c, "convert", str(short_video), "-o", str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{short_video.name}: done" in result.stdout.splitlines()
    decoded = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i",
                              str(tmp_path / "test card.mp3"), "-f", "null", "-"], capture_output=True, text=True,
                             timeout=120)
    assert decoded.returncode == 0, decoded.stderr
    hours, minutes, secs = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", decoded.stderr)[-1]
    assert abs(int(hours) * 3600 + int(minutes) * 60 + float(secs) - VIDEO_SECONDS) < 0.5


def test_scripts_smoke_passes_against_the_stack(gateway, stack_env_file):
    """The README's last quick-start step, its account read from the stack's .env as a user's would be."""
    result = subprocess.run([str(Path(__file__).resolve().parents[2] / "scripts/smoke"), gateway,
                             "--env-file", str(stack_env_file)],
                            capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k not in ("ADMIN_EMAIL", "ADMIN_PASSWORD")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke: all passed" in result.stdout
