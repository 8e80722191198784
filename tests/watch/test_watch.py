"""Live sync for real: `docker compose up --watch`, as typed, follows edits to the tree in all four
services. A gateway or auth change is served within seconds by the same container; a converter change
restarts the converter, which hands its message back, and the new code converts it; a notification change
handles the next message; a requirements change rebuilds the image. (How fast: scripts/bench --only
edit-to-live.)"""

import json
import subprocess
import time

import pytest
import requests

from tests.compose.stack import mp3_count, video, wait_status
from tests.containers import docker

pytestmark = pytest.mark.timeout(1800)


def container(watch_compose, service: str) -> str:
    return watch_compose(f"ps --quiet {service}").strip()


def inspect(container_id: str, field: str) -> str:
    return docker("inspect", "--format", "{{" + field + "}}", container_id).strip()


def served(url: str) -> dict:
    """The answer, or {} while gunicorn swaps its workers."""
    try:
        return requests.get(url, timeout=2).json()
    except (requests.RequestException, ValueError):
        return {}


def edit(path, old: str, new: str) -> None:
    source = path.read_text()
    assert old in source, f"{path.name} no longer has {old!r}"
    path.write_text(source.replace(old, new, 1))


def auth_health(auth: str) -> dict:
    """auth's /healthz, asked from inside its container (its port is not published)."""
    probe = ("import urllib.request; "
             "print(urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2).read().decode())")
    try:
        return json.loads(docker("exec", auth, "python", "-c", probe).strip())
    except (AssertionError, ValueError, subprocess.SubprocessError):
        return {}


@pytest.mark.parametrize("service", ["gateway", "auth"])
def test_an_http_service_change_is_live_within_10_s_without_a_rebuild(watching, watch_compose, tree, service):
    running = container(watch_compose, service)
    image = inspect(running, ".Image")
    source = {"gateway": "services/gateway/gateway/api/health.py", "auth": "services/auth/auth/app.py"}[service]
    edit(tree / source, 'jsonify(status="ok")', 'jsonify(status="ok", edited="live")')
    answer = (lambda: served(f"{watching}/healthz")) if service == "gateway" else (lambda: auth_health(running))
    changed = time.monotonic()

    while answer().get("edited") != "live":
        assert time.monotonic() - changed < 10, "the change was not served within 10 s"
        time.sleep(0.2)
    print(f"{service}: served {time.monotonic() - changed:.1f} s after the change")
    assert container(watch_compose, service) == running, "the container was replaced"
    assert inspect(running, ".Image") == image, "the image was rebuilt"


def test_a_notification_change_handles_the_next_message(watch_client, watch_compose, tree, tmp_path):
    edit(tree / "services/notification/notification/handler.py", 'log.info("mp3 ready"', 'log.info("mp3 ready, edited"')
    notification = container(watch_compose, "notification")
    started_at = inspect(notification, ".State.StartedAt")
    deadline = time.monotonic() + 120
    while inspect(notification, ".State.StartedAt") == started_at:
        assert time.monotonic() < deadline, "notification was not restarted"
        time.sleep(0.5)
    response = watch_client.upload(video(tmp_path / "short.mp4", 2))
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert wait_status(watch_client, job_id, ("done", "failed"), timeout=300)["status"] == "done"
    deadline = time.monotonic() + 60
    while not any(job_id in line and '"mp3 ready, edited"' in line
                  for line in watch_compose("logs --no-color notification").splitlines()):
        assert time.monotonic() < deadline, "the next message was not handled by the new code"
        time.sleep(1)


def test_a_converter_change_restarts_it_and_the_job_in_flight_is_picked_up_again(
    watch_client, watch_compose, watch_env, tree, tmp_path
):
    converter = container(watch_compose, "converter")
    started_at = inspect(converter, ".State.StartedAt")
    long_video = video(tmp_path / "long.mp4", 3600, size="64x48", rate=1)
    response = watch_client.upload(long_video)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = wait_status(watch_client, job_id, ("converting", "done", "failed"), timeout=120)
    assert job["status"] == "converting", f"the conversion was over before the change: {job}"

    handler = tree / "services/converter/converter/handler.py"
    edit(handler, 'log.info("converting"', 'log.info("converting, edited"')

    deadline = time.monotonic() + 120
    while inspect(converter, ".State.StartedAt") == started_at:
        assert time.monotonic() < deadline, "the converter was not restarted"
        time.sleep(0.5)
    assert 'log.info("converting, edited"' in docker("exec", converter, "cat", "/app/converter/handler.py")
    job = wait_status(watch_client, job_id, ("done", "failed"), timeout=600)
    assert job["status"] == "done", job
    assert mp3_count(watch_compose, watch_env, job_id) == 1
    logs = watch_compose("logs --no-color converter").splitlines()
    assert any('"message handed back"' in line for line in logs), "the converter did not hand its message back"
    attempts = [line for line in logs if job_id in line and '"converting' in line]
    assert len(attempts) >= 2, f"the job was not picked up again: {attempts}"
    assert '"converting, edited"' in attempts[-1], f"the new code did not convert it: {attempts}"


def test_a_requirements_change_rebuilds_the_image(watching, watch_compose, tree):
    notification = container(watch_compose, "notification")
    image = inspect(notification, ".Image")
    requirements = tree / "services/notification/requirements.txt"
    requirements.write_text(requirements.read_text() + "# edited: the image must be rebuilt\n")

    deadline = time.monotonic() + 900
    while True:
        current = container(watch_compose, "notification")
        if current and inspect(current, ".Image") != image and inspect(current, ".State.Running") == "true":
            break
        assert time.monotonic() < deadline, "the notification image was not rebuilt"
        time.sleep(2)
    installed = docker("exec", current, "cat", "/opt/requirements/notification/requirements.txt")
    assert "# edited: the image must be rebuilt" in installed
