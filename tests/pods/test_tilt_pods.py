"""What `tilt up` deploys, run by podman: the Tiltfile's objects, its `dev` images wrapped by the
restart_process extension's child image (tests/pods/tilt.py), every pod up and staying up, and a live
update (a synced file, then the restart file written) restarting the service's process with the new
code, without restarting its container."""

from __future__ import annotations

import time

import pytest
import requests

from tests.pods import tilt
from tests.pods.conftest import APP_SERVICES, ROOT, START_ORDER

pytestmark = pytest.mark.timeout(1800)

STEADY_SECONDS = 60
HEALTH = "services/gateway/gateway/api/health.py"


@pytest.fixture(scope="module")
def tilt_run(stack_root):
    return tilt.evaluate(stack_root)


@pytest.fixture(scope="module")
def tilt_stack(deploy, tilt_run, service_images, tmp_path_factory):
    dev_images = {name: service_images[(name, "dev")] for name in APP_SERVICES}
    deployed = tilt.build_images(tilt_run, dev_images, tmp_path_factory.mktemp("tilt-images"))
    return deploy(tilt.deployed_objects(tilt_run, deployed))


def test_the_app_pods_run_the_restart_wrapper_of_the_extensions_child_image(tilt_run, tilt_stack):
    for name in APP_SERVICES:
        [build] = [build for ref, build in tilt.deployed_builds(tilt_run).items() if ref == f"mp3converter/{name}"]
        assert build.entrypoint[0] == "/tilt-restart-wrapper"
        for container, info in tilt_stack.containers(name).items():
            assert info["Config"]["Image"].endswith(f"mp3converter/{name}:{tilt.TAG}"), container
            assert info["Path"] == "/tilt-restart-wrapper", container


def test_every_pod_starts_and_stays_up_without_a_restart(tilt_stack):
    containers = tilt_stack.containers()
    assert {name.split("-pod-")[0] for name in containers} == set(START_ORDER)
    time.sleep(STEADY_SECONDS)
    for name, info in tilt_stack.containers().items():
        assert info["State"]["Status"] == "running", f"{name}: {info['State']}\n{tilt_stack.logs(name)}"
        assert info["RestartCount"] == 0, f"{name} restarted {info['RestartCount']} times\n{tilt_stack.logs(name)}"


def test_every_probe_passes(tilt_stack):
    failed = [(probe.container, probe.kind, seen) for probe in tilt_stack.probes()
              for passed, seen in [tilt_stack.run_probe(probe)] if not passed]
    assert failed == []


def test_a_synced_file_restarts_the_process_and_the_new_code_answers(tilt_run, tilt_stack):
    [container, other] = sorted(tilt_stack.containers("gateway"))
    build = tilt.deployed_builds(tilt_run)["mp3converter/gateway"]
    source = (ROOT / HEALTH).read_text()
    assert source.count('return jsonify(status="ok")') == 1
    changed = source.replace('return jsonify(status="ok")', 'return jsonify(status="ok", synced="yes")')
    url = f"http://{tilt_stack.address(container)}:8080/healthz"
    assert requests.get(url, timeout=5).json() == {"status": "ok"}

    tilt.live_update(container, build, {HEALTH: changed.encode()}, ROOT)

    deadline = time.monotonic() + 60
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, timeout=5).json()
        except requests.RequestException as error:
            answer = str(error)  # the process is restarting
        if answer == {"status": "ok", "synced": "yes"}:
            break
        time.sleep(0.5)
    assert answer == {"status": "ok", "synced": "yes"}, f"{answer}\n{tilt_stack.logs(container)}"
    # The process restarted, not the container; the other replica still runs the image's code.
    assert tilt_stack.containers("gateway")[container]["RestartCount"] == 0
    other_url = f"http://{tilt_stack.address(other)}:8080/healthz"
    assert requests.get(other_url, timeout=5).json() == {"status": "ok"}
