"""Running a translated stack (translate.plan) with Debian's podman: images from the Docker engine,
one `podman kube play` per workload on a network of its own, and what a kubelet would look at (the
containers' state and restarts, the probes), all removed again by ``Stack.remove``.

Probes: podman 4.3 turns a livenessProbe into a healthcheck that systemd timers would run (there is no
systemd here) and an httpGet into `curl` inside the container (the images have none). So each probe is
run here as the kubelet runs it: an exec probe in the container (``podman exec``), an httpGet from
outside the pod to the pod's address, a tcpSocket as a connection to it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from tests.pods.translate import Plan, Play


class PodmanError(Exception):
    pass


def podman(*args: str, timeout: float = 300, check: bool = True, stdin: bytes | None = None) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, timeout=timeout, input=stdin, check=False)
    if check and result.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr.decode().strip()}")
    return result.stdout.decode()


def podman_problem() -> str | None:
    """Why podman cannot run the pods here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (Debian: apt-get install podman catatonit netavark aardvark-dns; .ci/run does)"
    result = subprocess.run(["podman", "info", "--format", "json"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"`podman info` failed: {result.stderr.strip()}"
    return None


def docker_image_id(ref: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def podman_image_id(ref: str) -> str | None:
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def load_image(docker_ref: str, podman_ref: str) -> None:
    """The Docker engine's DOCKER_REF in podman as PODMAN_REF; not copied again while its id is the same."""
    wanted = docker_image_id(docker_ref)
    if wanted is None:
        raise PodmanError(f"no image {docker_ref} in the Docker engine")
    if podman_image_id(podman_ref) == wanted.removeprefix("sha256:"):
        return
    if podman_image_id(wanted.removeprefix("sha256:")) is None:
        saved = subprocess.run(["docker", "save", docker_ref], capture_output=True, check=True, timeout=600).stdout
        podman("load", stdin=saved, timeout=600)
    podman("tag", wanted.removeprefix("sha256:"), podman_ref)


@dataclass
class Probe:
    container: str  # podman's name of the container
    kind: str  # startupProbe, readinessProbe, livenessProbe
    spec: dict


@dataclass
class Stack:
    """Translated workloads played on a network of their own. Everything made is named by ``label``."""

    label: str = field(default_factory=lambda: f"mp3pods-{uuid.uuid4().hex[:8]}")
    plays: dict[str, Play] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    volumes: set[str] = field(default_factory=set)
    network_made: bool = False

    @property
    def network(self) -> str:
        return self.label

    def create(self, plan: Plan) -> None:
        podman("network", "create", "--label", f"mp3converter.pods={self.label}", self.network)
        self.network_made = True
        for path, content in plan.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
        for path in plan.empty_dirs:
            Path(path).mkdir(parents=True)
            Path(path).chmod(0o777)
        for name, content in plan.secrets.items():
            podman("secret", "create", name, "-", stdin=content)
            self.secrets.append(name)

    def play(self, play: Play) -> None:
        """`podman kube play` of one workload, its pods answering to its Services' names."""
        network = self.network
        if play.aliases:
            network += ":" + ",".join(f"alias={alias}" for alias in play.aliases)
        text = yaml.safe_dump_all(play.documents)
        for doc in play.documents:
            if doc["kind"] in ("ConfigMap", "PersistentVolumeClaim"):
                self.volumes.add(doc["metadata"]["name"])
        self.plays[play.name] = play
        podman("kube", "play", "--network", network, "--log-driver", "k8s-file", "-", stdin=text.encode(),
               timeout=600)

    def down(self, name: str) -> None:
        """The workload's pods stopped and removed, as `kubectl delete pod` does (its volumes stay)."""
        for pod in self.pods(name):
            podman("pod", "rm", "--force", "--time", "30", pod, timeout=120)

    def replay(self, name: str) -> None:
        """The workload's pods made again, as its Deployment's controller does after a deletion."""
        self.down(name)
        self.play(self.plays[name])

    def pods(self, name: str | None = None) -> list[str]:
        names = [name] if name else list(self.plays)
        listed = json.loads(podman("pod", "ps", "--format", "json") or "[]")
        return sorted(pod["Name"] for pod in listed for workload in names
                      if pod["Name"].startswith(f"{workload}-pod-"))

    def containers(self, name: str | None = None) -> dict[str, dict]:
        """podman's inspection of each app container (not the pods' infra containers), by name."""
        found = {}
        for pod in self.pods(name):
            info = json.loads(podman("pod", "inspect", pod))
            info = info[0] if isinstance(info, list) else info
            for container in info["Containers"]:
                if container["Id"] != info.get("InfraContainerID"):
                    found[container["Name"]] = json.loads(podman("container", "inspect", container["Id"]))[0]
        return found

    def address(self, container: str) -> str:
        info = json.loads(podman("container", "inspect", container))[0]
        pod_infra = info.get("Pod") and json.loads(podman("pod", "inspect", info["Pod"]))
        pod_infra = pod_infra[0] if isinstance(pod_infra, list) else pod_infra
        infra = json.loads(podman("container", "inspect", pod_infra["InfraContainerID"]))[0]
        return infra["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def probes(self, name: str | None = None) -> list[Probe]:
        result = []
        for play_name in [name] if name else list(self.plays):
            spec = self.plays[play_name].workload["spec"]["template"]["spec"]
            for pod in self.pods(play_name):
                for container in spec["containers"]:
                    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                        if kind in container:
                            result.append(Probe(f"{pod}-{container['name']}", kind, container[kind]))
        return result

    def run_probe(self, probe: Probe) -> tuple[bool, str]:
        """The probe as the kubelet runs it: (passed, what it saw)."""
        timeout = probe.spec.get("timeoutSeconds", 1)
        if "exec" in probe.spec:
            # A container runtime under Kubernetes gives every process HOSTNAME (the pod's name); podman's
            # exec sessions do not, so it is passed as the runtime would.
            hostname = podman("container", "inspect", "--format", "{{.Config.Hostname}}", probe.container).strip()
            result = subprocess.run(["podman", "exec", "--env", f"HOSTNAME={hostname}", probe.container,
                                     *probe.spec["exec"]["command"]],
                                    capture_output=True, text=True, timeout=timeout + 30, check=False)
            return result.returncode == 0, f"exit {result.returncode}: {(result.stdout + result.stderr).strip()}"
        address = self.address(probe.container)
        if "httpGet" in probe.spec:
            get = probe.spec["httpGet"]
            url = f"http://{address}:{get['port']}{get.get('path', '/')}"
            try:
                response = requests.get(url, timeout=timeout)
            except requests.RequestException as error:
                return False, f"GET {url}: {error}"
            return 200 <= response.status_code < 400, f"GET {url}: {response.status_code} {response.text[:200]}"
        port = probe.spec["tcpSocket"]["port"]
        try:
            socket.create_connection((address, port), timeout=timeout).close()
        except OSError as error:
            return False, f"connect {address}:{port}: {error}"
        return True, f"connect {address}:{port}: ok"

    def wait_probe(self, probe: Probe, timeout: float) -> None:
        """Rerun PROBE every periodSeconds until it passes, as the kubelet does (at most TIMEOUT s)."""
        deadline = time.monotonic() + timeout
        while True:
            passed, seen = self.run_probe(probe)
            if passed:
                return
            self.assert_not_restarted(probe.container)
            if time.monotonic() > deadline:
                raise AssertionError(f"{probe.container} {probe.kind} still failing after {timeout} s: {seen}\n"
                                     f"{self.logs(probe.container)}")
            time.sleep(min(probe.spec.get("periodSeconds", 10), 5))

    def assert_not_restarted(self, container: str) -> None:
        """Fails at once, with the container's logs, when it has exited or been restarted."""
        state = json.loads(podman("container", "inspect", container))[0]
        if state["RestartCount"] or state["State"]["Status"] not in ("running", "created", "configured"):
            raise AssertionError(f"{container} is {state['State']['Status']} after {state['RestartCount']} "
                                 f"restarts (last exit {state['State']['ExitCode']})\n{self.logs(container)}")

    def logs(self, container: str, tail: int = 40) -> str:
        result = subprocess.run(["podman", "logs", "--tail", str(tail), container], capture_output=True, text=True,
                                check=False)
        return f"--- {container} (last {tail} lines) ---\n{result.stdout}{result.stderr}"

    def remove(self) -> None:
        """Every pod, volume, secret and the network this stack made, whatever state they are in."""
        errors = []
        for name in list(self.plays):
            for pod in self.pods(name):
                result = subprocess.run(["podman", "pod", "rm", "--force", "--time", "5", pod], capture_output=True,
                                        text=True, check=False)
                if result.returncode != 0:
                    errors.append(result.stderr)
        for volume in sorted(self.volumes):
            subprocess.run(["podman", "volume", "rm", "--force", volume], capture_output=True, check=False)
        for secret in self.secrets:
            subprocess.run(["podman", "secret", "rm", secret], capture_output=True, check=False)
        if self.network_made:
            subprocess.run(["podman", "network", "rm", "--force", self.network], capture_output=True, check=False)
        if errors:
            raise PodmanError("".join(errors))


def in_ci() -> bool:
    return os.environ.get("CI") == "true"
