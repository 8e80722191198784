"""The four images as compose builds them: they run as uid 10001, refuse to start without their
variables (naming them, within seconds), and their health checks work in the running stack."""

import json
import re
import subprocess
import time

import pytest

from standins import build as standins
from tests.containers import docker

pytestmark = pytest.mark.timeout(900)

APPS = ("auth", "gateway", "converter", "notification")


@pytest.mark.parametrize("service", APPS)
def test_the_service_runs_as_uid_10001(docker_services, stack_compose, service):
    assert stack_compose(f"exec -T {service} id -u").strip() == "10001"
    assert stack_compose(f"exec -T {service} id -g").strip() == "10001"


@pytest.mark.parametrize("service", APPS)
def test_started_with_no_variables_it_exits_naming_what_is_missing(docker_services, stack_config, service):
    image = stack_config["services"][service]["image"]
    started = time.monotonic()
    result = subprocess.run(["docker", "run", "--rm", image], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert seconds < 30, f"took {seconds:.0f} s to give up"
    named = set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})\b", output))
    expected = set(stack_config["services"][service]["environment"])
    assert named & expected, f"names none of {sorted(expected)}:\n{output}"


@pytest.mark.parametrize("service", ["mysql", "mongodb", "rabbitmq", *APPS, "mailpit"])
def test_its_healthcheck_command_works(docker_services, container_of, service):
    command = healthcheck(container_of(service))
    result = subprocess.run(["docker", "exec", container_of(service), *command], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_healthcheck_fails_when_its_service_does_not_answer(docker_services, container_of):
    """The gateway's check, pointed at a port nobody serves, fails: the checks can say "unhealthy"."""
    command = healthcheck(container_of("gateway"))
    wrong = [part.replace(":8080/", ":8089/") for part in command]
    assert wrong != command
    result = subprocess.run(["docker", "exec", container_of("gateway"), *wrong], capture_output=True, timeout=60)
    assert result.returncode != 0


def healthcheck(container: str) -> list[str]:
    """The container's health check as the engine runs it."""
    test = json.loads(docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}", container))
    return ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]


def test_a_stand_in_says_what_it_stands_in_for(docker_services, stack_config):
    """Where an image is a stand-in (scripts/standins), its label names exactly that image; the four
    service images built on a stand-in python inherit the label naming their base, never their own name."""
    for name, service in stack_config["services"].items():
        labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", service["image"]))
        stands_in_for = (labels or {}).get("mp3converter.standin")
        if name in APPS:
            assert stands_in_for in (None, *standins.wanted_images()), f"{name}: {stands_in_for}"
            assert stands_in_for != service["image"]
        else:
            assert stands_in_for in (None, service["image"]), f"{name}: {stands_in_for}"
