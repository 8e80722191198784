"""The objects `kubectl apply -k .` deploys, run by podman: every pod starts and stays up, every probe
passes, a video becomes an MP3 through the gateway, and a converter pod deleted in the middle of a job
leaves it to the next pod, which finishes it once."""

from __future__ import annotations

import re
import subprocess
import time

import imageio_ffmpeg
import pytest

from compose_project import wait_ready
from tests.compose.stack import video, wait_status
from tests.pods.conftest import START_ORDER
from tests.servers import Client

pytestmark = pytest.mark.timeout(1800)

VIDEO_SECONDS = 5.0
STEADY_SECONDS = 60
# A tiny picture and a long sound track: a conversion longer than the converter's SIGTERM grace
# (SHUTDOWN_GRACE_SECONDS, 20 s), so that a deleted pod hands the job back unfinished.
LONG_SECONDS = 7200


@pytest.fixture(scope="module")
def stack(deploy, manifests):
    return deploy(manifests)


@pytest.fixture(scope="module")
def gateway(stack) -> str:
    """The gateway's Service, as a pod in the cluster reaches it: a gateway pod's address."""
    [first, *_] = sorted(stack.containers("gateway"))
    url = f"http://{stack.address(first)}:8080"
    wait_ready(url, timeout=120)
    return url


@pytest.fixture(scope="module")
def client(gateway, stack_env) -> Client:
    return Client.as_admin(gateway, stack_env)


def mp3_duration(path) -> float:
    decoded = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert re.search(r"Stream #0:\d+.*: Audio: mp3", decoded.stderr), decoded.stderr
    hours, minutes, secs = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", decoded.stderr)[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def test_every_pod_of_every_workload_starts_and_stays_up_without_a_restart(stack):
    containers = stack.containers()
    workloads = {name.split("-pod-")[0] for name in containers}
    assert workloads == set(START_ORDER)
    # Two replicas where the manifests ask for two.
    assert len([name for name in containers if name.startswith(("auth-", "gateway-"))]) == 4
    time.sleep(STEADY_SECONDS)
    after = stack.containers()
    assert set(after) == set(containers)
    for name, info in after.items():
        assert info["State"]["Status"] == "running", f"{name}: {info['State']}\n{stack.logs(name)}"
        assert info["RestartCount"] == 0, f"{name} restarted {info['RestartCount']} times\n{stack.logs(name)}"
        assert info["State"]["StartedAt"] == containers[name]["State"]["StartedAt"], name


def test_every_probe_passes(stack):
    probes = stack.probes()
    assert {probe.container.split("-pod-")[0] for probe in probes} == set(START_ORDER)
    failed = [(probe.container, probe.kind, seen) for probe in probes for passed, seen in [stack.run_probe(probe)]
              if not passed]
    assert failed == []


def test_the_app_containers_run_as_the_manifests_say(stack):
    """Read-only root filesystem, uid 10001, no capabilities, and /tmp writable (the emptyDir)."""
    for name in stack.containers("gateway"):
        check = subprocess.run(
            ["podman", "exec", name, "sh", "-c",
             "id -u; grep CapEff /proc/self/status; touch /app/x 2>&1; touch /tmp/x && echo tmp-writable"],
            capture_output=True, text=True, check=False,
        )
        assert check.stdout.splitlines()[0] == "10001"
        assert "CapEff:\t0000000000000000" in check.stdout
        assert "Read-only file system" in check.stdout
        assert "tmp-writable" in check.stdout


def test_a_video_becomes_an_mp3_through_the_gateway(client, tmp_path):
    source = video(tmp_path / "test card.mp4", VIDEO_SECONDS)
    response = client.upload(source)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.job(job_id).json()
        seen.append((job["status"], job["progress"]))
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "done", f"job ended as {job}"
    assert [progress for _, progress in seen] == sorted(progress for _, progress in seen)
    download = client.download(job["mp3_fid"])
    assert download.status_code == 200, download.text
    assert download.headers["Content-Type"].startswith("audio/mpeg")
    mp3 = tmp_path / "download.mp3"
    mp3.write_bytes(download.content)
    assert abs(mp3_duration(mp3) - VIDEO_SECONDS) < 0.5


def test_a_deleted_converter_pod_leaves_its_job_to_the_next_one_which_finishes_it_once(
    stack, client, stack_env, tmp_path
):
    long_video = video(tmp_path / "long.mp4", LONG_SECONDS, size="64x48", rate=1)
    response = client.upload(long_video)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    wait_status(client, job_id, ("converting",), timeout=120)
    stack.down("converter")  # `kubectl delete pod`: SIGTERM, then SIGKILL after the grace period
    assert stack.pods("converter") == []
    job = client.job(job_id).json()
    assert job["status"] in ("queued", "converting"), f"the job was over before the pod went: {job}"
    stack.replay("converter")  # the Deployment's controller makes a new pod
    job = wait_status(client, job_id, ("done", "failed"), timeout=600)
    assert job["status"] == "done", job
    assert mp3_count(stack, stack_env, job_id) == 1


def mp3_count(stack, env: dict, job_id: str) -> int:
    """How many MP3s GridFS holds for the job, asked with the mongodb pod's own mongosh."""
    [mongodb] = stack.containers("mongodb")
    script = f"db.getCollection('mp3s.files').countDocuments({{'metadata.job_id': '{job_id}'}})"
    result = subprocess.run(
        ["podman", "exec", mongodb, "mongosh", "--quiet", "-u", env["MONGO_ROOT_USER"], "-p",
         env["MONGO_ROOT_PASSWORD"], "--authenticationDatabase", "admin", env["MONGODB_DB"], "--eval", script],
        capture_output=True, text=True, check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])
