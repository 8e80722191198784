"""Fixtures of the pod suite: the manifests' pods run by podman (tests/pods/translate.py says what is
translated, tests/pods/podman.py how they run).

- ``podman_ready``: podman installed and set up (scripts/podman-setup); without it the suite is skipped
  with the reason, and with CI=true it fails.
- ``stack_root``: a copy of the deployment files with a .env from scripts/init-env, and ``stack_env``
  its values; ``manifests``: `kubectl kustomize .` of it, the objects `kubectl apply -k .` sends.
- ``service_images``: the four services' images built by the Docker engine (target runtime, as
  compose and scripts/k8s-images build them; `dev` for the Tilt variant) and, with the backends'
  images (stand-ins where none can be pulled), copied into podman, once per session and only when
  their image id changed.
- ``deploy(objects)``: plays OBJECTS (backends first, as Tilt's resource_deps order them), waits until
  every startup and readiness probe passes, and removes everything at the end of the test module, also
  when a test failed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.containers import unavailable
from tests.harness import recipe
from tests.harness.k8s_stack import build, read_env, stack_copy
from tests.pods.podman import Stack, load_image, podman_problem
from tests.pods.translate import plan

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("auth", "gateway", "converter", "notification")
BACKENDS = ("mysql", "mongodb", "rabbitmq")
# The order Tilt's resource_deps give (compose's depends_on): a backend before what needs it.
START_ORDER = ("mysql", "mongodb", "rabbitmq", "auth", "gateway", "converter", "notification")
SHUTDOWN_GRACE_SECONDS = 2



@pytest.fixture(scope="session")
def podman_ready(docker_engine) -> None:
    problem = podman_problem()
    if problem is None:
        setup = subprocess.run([str(ROOT / "scripts/podman-setup")], capture_output=True, text=True, check=False)
        if setup.returncode != 0:
            problem = f"scripts/podman-setup failed: {setup.stderr.strip()}"
    if problem:
        unavailable(problem)


@pytest.fixture(scope="session")
def stack_root(tmp_path_factory) -> Path:
    env = tmp_path_factory.mktemp("pods-env") / ".env"
    subprocess.run([sys.executable, str(ROOT / "scripts/init-env"), "--output", str(env)], check=True,
                   capture_output=True)
    # A converter pod deleted mid-job hands its message back once its grace is over. At the default 20 s
    # an idle machine finished the test's two-hour video within it, so the pod went with its job done.
    env.write_text(re.sub(r"^SHUTDOWN_GRACE_SECONDS=.*$", f"SHUTDOWN_GRACE_SECONDS={SHUTDOWN_GRACE_SECONDS}",
                          env.read_text(), flags=re.MULTILINE))
    return stack_copy(tmp_path_factory.mktemp("pods") / "repo", env)


@pytest.fixture(scope="session")
def stack_env(stack_root) -> dict:
    return read_env(stack_root / ".env")


@pytest.fixture(scope="session")
def manifests(stack_root) -> list[dict]:
    return build(stack_root)


def docker_build(name: str, target: str) -> str:
    tag = f"mp3converter-pods/{name}:{target}"
    result = subprocess.run(
        ["docker", "build", "--quiet", "--target", target, "-f", "services/Dockerfile",
         *(f"--build-arg={key}={value}" for key, value in recipe.build_args(name).items()), "-t", tag, "services"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert result.returncode == 0, f"docker build {tag}: {result.stderr}"
    return tag


@pytest.fixture(scope="session")
def service_images(podman_ready, container_images, manifests) -> dict:
    """{(name, target): the Docker engine's tag}; the runtime images and the backends' also in podman
    under the names the manifests give."""
    built = {}
    for name in APP_SERVICES:
        for target in ("runtime", "dev"):
            built[(name, target)] = docker_build(name, target)
        load_image(built[(name, "runtime")], f"mp3converter/{name}")
    for obj in manifests:
        if obj["kind"] == "StatefulSet":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                load_image(container["image"], container["image"])
    return built


@pytest.fixture(scope="module")
def deploy(service_images, tmp_path_factory):
    """deploy(objects) -> Stack: the objects' workloads running, every startup and readiness probe passed."""
    stacks = []

    def run(objects: list[dict]) -> Stack:
        translated = plan(objects, str(tmp_path_factory.mktemp("pod-files")))
        stack = Stack()
        stacks.append(stack)
        stack.create(translated)
        plays = {play.name: play for play in translated.plays}
        assert set(plays) == set(START_ORDER), sorted(plays)
        for name in START_ORDER:
            stack.play(plays[name])
            for probe in stack.probes(name):
                if probe.kind != "livenessProbe":
                    spec = probe.spec
                    stack.wait_probe(probe, spec.get("periodSeconds", 10) * spec.get("failureThreshold", 3) + 30)
        return stack

    yield run
    for stack in stacks:
        stack.remove()
