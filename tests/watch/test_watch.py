"""Live sync for real: `docker compose up --watch` follows edits to the tree. A gateway change is
served within seconds by the same container; a converter change restarts the converter, which hands
its message back, and the job is done once all the same; a requirements change rebuilds the image."""

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


def test_a_gateway_change_is_live_within_10_s_without_a_rebuild(watching, watch_compose, tree):
    gateway = container(watch_compose, "gateway")
    image = inspect(gateway, ".Image")
    health = tree / "services/gateway/gateway/api/health.py"
    source = health.read_text()
    assert 'jsonify(status="ok")' in source
    health.write_text(source.replace('jsonify(status="ok")', 'jsonify(status="ok", edited="live")'))
    changed = time.monotonic()

    while served(f"{watching}/healthz").get("edited") != "live":
        assert time.monotonic() - changed < 10, "the change was not served within 10 s"
        time.sleep(0.2)
    print(f"served {time.monotonic() - changed:.1f} s after the change")
    assert container(watch_compose, "gateway") == gateway, "the container was replaced"
    assert inspect(gateway, ".Image") == image, "the image was rebuilt"


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
    handler.write_text(handler.read_text() + "\n# edited while a conversion runs\n")

    deadline = time.monotonic() + 120
    while inspect(converter, ".State.StartedAt") == started_at:
        assert time.monotonic() < deadline, "the converter was not restarted"
        time.sleep(0.5)
    assert docker("exec", converter, "tail", "-n", "1", "/app/converter/handler.py").strip() == (
        "# edited while a conversion runs"
    )
    job = wait_status(watch_client, job_id, ("done", "failed"), timeout=600)
    assert job["status"] == "done", job
    assert mp3_count(watch_compose, watch_env, job_id) == 1
    logs = watch_compose("logs --no-color converter").splitlines()
    assert any('"message handed back"' in line for line in logs), "the converter did not hand its message back"
    attempts = [line for line in logs if job_id in line and '"converting"' in line]
    assert len(attempts) >= 2, f"the job was not picked up again: {attempts}"


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
