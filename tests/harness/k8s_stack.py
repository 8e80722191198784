"""The Kubernetes stack as `kubectl apply -k` builds it, for the harness tests.

The root kustomization.yaml reads .env and init.sql next to it, and kustomize reads files only from
under a kustomization's own directory: so a build happens in a temporary copy of the repository's
deployment files, with a .env made by scripts/init-env. Nothing here needs a cluster or the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

from tests.harness.tilt_stubs import kubectl_bin

REPO_ROOT = Path(__file__).resolve().parents[2]
# What `kubectl apply -k .` and `tilt up` read: everything else in the repository is irrelevant to them.
DEPLOY_FILES = ("kustomization.yaml", "manifests", "observability", "init.sql", "init", "Tiltfile")
APP_SERVICES = ("auth", "gateway", "converter", "notification")
BACKING_SERVICES = ("mysql", "mongodb", "rabbitmq")
# The root kustomization, and every overlay: each must build.
ENTRY_POINTS = (".", "manifests/overlays/keda-autoscale", "manifests/overlays/observe")
COMPONENTS = ("manifests/components/keda-autoscale", "manifests/components/ingress-tls", "manifests/components/observe")
# Components used by the ones above and by an overlay, not offered alone.
PART_COMPONENTS = ("manifests/components/observe-tools",)
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def read_env(path: Path) -> dict:
    """NAME=value lines of a .env made by scripts/init-env (it writes no quotes)."""
    lines = Path(path).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def stack_copy(dest: Path, env_file: Path | None) -> Path:
    """A copy of the deployment files in DEST (services/ linked, for the Tiltfile), with ENV_FILE as .env."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in DEPLOY_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    (dest / "services").symlink_to(REPO_ROOT / "services", target_is_directory=True)
    if env_file is not None:
        shutil.copy2(env_file, dest / ".env")
    return dest


def kustomize(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [kubectl_bin(), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def build(path: Path) -> list[dict]:
    result = kustomize(path)
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def is_core(obj: dict) -> bool:
    """Kubernetes' own kinds (core group, or a *.k8s.io group / apps, policy...): not a CRD's."""
    api_version = obj["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


def validate_strict(objects: list[dict], workdir: Path) -> subprocess.CompletedProcess:
    """`kubernetes-validate --strict` on the objects, for the current Kubernetes version."""
    path = workdir / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    command = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run(
        [str(command), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def container(obj: dict) -> dict:
    containers = pod_spec(obj)["containers"]
    assert len(containers) == 1, f"{obj['kind']}/{obj['metadata']['name']}: one container expected"
    return containers[0]


def generated(objects: list[dict], kind: str, name: str) -> dict:
    """The generated ConfigMap or Secret NAME (kustomize appends a hash of the content)."""
    found = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"].startswith(name + "-")]
    assert len(found) == 1, f"{len(found)} {kind} named {name}-<hash>"
    return found[0]
