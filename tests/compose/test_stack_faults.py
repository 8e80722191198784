"""The compose stack under failure: MongoDB and RabbitMQ stopped and started again while a job is in
flight, and the converter killed (SIGKILL) in the middle of a conversion. Nothing is lost, nothing is
done twice. Runs after test_stack.py, on the same stack."""

import os
import signal
import time

import pytest

from compose_project import readiness, wait_ready
from tests.compose.stack import mp3_count, video, wait_status
from tests.containers import docker
from tests.servers import Client

pytestmark = pytest.mark.timeout(1800)

LONG_SECONDS = 900  # a tiny picture and a long sound track: several seconds of conversion


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return video(tmp_path_factory.mktemp("media") / "long.mp4", LONG_SECONDS, size="64x48", rate=1)


@pytest.fixture(scope="module")
def client(docker_ip, docker_services, stack_env) -> Client:
    url = f"http://{docker_ip}:{docker_services.port_for('gateway', 8080)}"
    wait_ready(url)
    client = Client(url)
    assert client.login(stack_env["ADMIN_EMAIL"], stack_env["ADMIN_PASSWORD"]).status_code == 200
    return client


def wait_not_ready(url: str, dependency: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = readiness(url)
        if status == 503 and body["checks"][dependency] != "ok":
            return body
        time.sleep(0.5)
    raise AssertionError(f"/readyz did not name {dependency}: {status} {body}")


def test_a_backend_outage_is_reported_and_the_job_survives_it(client, long_video, stack_compose, stack_env):
    response = client.upload(long_video)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    stack_compose("stop mongodb")
    body = wait_not_ready(client.base, "mongodb")
    assert body["ready"] is False
    stack_compose("stop rabbitmq")
    body = wait_not_ready(client.base, "rabbitmq")
    assert body["checks"]["mongodb"] != "ok"

    stack_compose("start mongodb rabbitmq")
    wait_ready(client.base, timeout=300)
    job = wait_status(client, job_id, ("done", "failed"), timeout=600)
    assert job["status"] == "done", job
    assert mp3_count(stack_compose, stack_env, job_id) == 1


def converting_job(client, video) -> str:
    response = client.upload(video)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = wait_status(client, job_id, ("converting", "done", "failed"), timeout=120)
    assert job["status"] == "converting", f"the conversion was over before the kill: {job}"
    return job_id


def assert_done_once(client, job_id, stack_compose, stack_env):
    job = wait_status(client, job_id, ("done", "failed"), timeout=600)
    assert job["status"] == "done", job
    assert mp3_count(stack_compose, stack_env, job_id) == 1


def test_docker_kill_on_the_converter_mid_conversion_then_a_restart_finishes_the_job_once(
    client, long_video, stack_compose, stack_env, container_of
):
    """`docker kill` counts as stopping the container by hand, so Docker leaves it stopped whatever the
    restart policy; an operator (or compose) starts it again."""
    converter = container_of("converter")
    job_id = converting_job(client, long_video)

    docker("kill", "--signal", "KILL", converter)
    assert docker("inspect", "--format", "{{.State.ExitCode}}", converter).strip() == "137"
    stack_compose("start converter")

    assert_done_once(client, job_id, stack_compose, stack_env)


def test_a_converter_crash_mid_conversion_is_restarted_by_its_policy_and_finishes_the_job_once(
    client, long_video, stack_compose, stack_env, container_of
):
    """The converter's process killed from outside, as the kernel's OOM killer would: `restart:
    unless-stopped` brings it back by itself, and the job ends done with one MP3."""
    if os.geteuid() != 0:
        pytest.skip("killing a container's process from the host needs root")
    converter = container_of("converter")
    restarts = int(docker("inspect", "--format", "{{.RestartCount}}", converter))
    job_id = converting_job(client, long_video)

    os.kill(int(docker("inspect", "--format", "{{.State.Pid}}", converter)), signal.SIGKILL)

    deadline = time.monotonic() + 120
    while int(docker("inspect", "--format", "{{.RestartCount}}", converter)) == restarts:
        assert time.monotonic() < deadline, "the converter was not restarted by its restart policy"
        time.sleep(0.5)
    assert_done_once(client, job_id, stack_compose, stack_env)
