"""What `tilt up` deploys, for podman: the Tiltfile evaluated (tests/harness/tilt_stubs.py, with the
restart_process extension's own Tiltfile), its images built as Tilt builds them, and its objects with
the images and commands Tilt puts in.

For each service the extension declares two builds: the service's `dev` stage as
``<ref>-tilt_docker_build_with_restart_base``, and on top of it the child image of the extension's
Dockerfile (the restart wrapper and entr from tiltdev/restart-helper; ENTRYPOINT the wrapper watching the
restart file). Tilt deploys the child under ``<ref>:tilt-<hash>`` and, since the build names an
entrypoint, sets each matching container's ``command`` to it (tilt internal/k8s InjectCommandAndArgs:
Command replaced, Args kept).

A live update, as Tilt's exec updater does it in a pod: the changed files as a tar stream into
`tar -C / -x -f -` run in the container (so they belong to the container's user), then each `run` step
as `sh -c STEP` in the container.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.harness.tilt_stubs import ImageBuild, Run, Sync, TiltRun, evaluate_tiltfile, image_name
from tests.pods.podman import docker_image_id, load_image, podman

HERE = Path(__file__).resolve().parent
TAG = "tilt-pods"  # stands for Tilt's tilt-<content hash>
HELPER_LABEL = "mp3converter.standin"


def evaluate(root: Path) -> TiltRun:
    return evaluate_tiltfile(root)


def deployed_builds(run: TiltRun) -> dict[str, ImageBuild]:
    """The builds whose image a workload runs (the extension's child images), by ref."""
    images = {container["image"] for obj in run.objects if obj["kind"] in ("Deployment", "StatefulSet")
              for container in obj["spec"]["template"]["spec"]["containers"]}
    return {build.ref: build for build in run.builds if build.ref in images}


def base_of(run: TiltRun, build: ImageBuild) -> ImageBuild:
    """The Tiltfile's build that BUILD's Dockerfile starts FROM."""
    refs = re.findall(r"^\s*FROM\s+(\S+)\s*$", build.dockerfile_contents, re.MULTILINE)
    [base] = [other for other in run.builds if other.ref in refs]
    return base


def helper_image(build: ImageBuild) -> str:
    """The restart helper image the child's Dockerfile copies from (`FROM ... as restart-helper`)."""
    return re.search(r"^\s*FROM\s+(\S+)\s+as\s+restart-helper\s*$", build.dockerfile_contents,
                     re.MULTILINE | re.IGNORECASE).group(1)


def ensure_restart_helper(ref: str, workdir: Path) -> None:
    """REF in the Docker engine: pulled where it can be, else its stand-in (restart_helper/) built, again
    each time (Docker's cache makes an unchanged one cheap). A real image already there is kept."""
    if docker_image_id(ref) is not None and not is_standin(ref):
        return
    if docker_image_id(ref) is None and subprocess.run(["docker", "pull", "--quiet", ref], capture_output=True,
                                                       check=False).returncode == 0:
        return
    context = workdir / "restart-helper"
    shutil.copytree(HERE / "restart_helper", context, dirs_exist_ok=True)
    result = subprocess.run(["docker", "build", "--quiet", "-t", ref, str(context)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"building the stand-in for {ref}: {result.stderr}"


def is_standin(ref: str) -> bool:
    labels = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
                            capture_output=True, text=True, check=True).stdout
    return HELPER_LABEL in (json.loads(labels) or {})


def build_images(run: TiltRun, dev_images: dict[str, str], workdir: Path) -> dict[str, str]:
    """Every deployed image built as Tilt builds it, and copied into podman: {ref: the ref deployed}.
    DEV_IMAGES maps a service to the Docker engine's tag of its `dev` stage (the base build's target)."""
    deployed = {}
    for ref, build in deployed_builds(run).items():
        base = base_of(run, build)
        assert base.kwargs["target"] == "dev" and base.context == "services", base
        name = image_name(ref).rsplit("/", 1)[-1]
        subprocess.run(["docker", "tag", dev_images[name], base.ref], check=True, capture_output=True)
        ensure_restart_helper(helper_image(build), workdir)
        child = f"mp3converter-pods/{name}:{TAG}"
        result = subprocess.run(["docker", "build", "--quiet", "-t", child, "-"], input=build.dockerfile_contents,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"the restart_process child image of {ref}: {result.stderr}"
        deployed[ref] = f"{ref}:{TAG}"
        load_image(child, deployed[ref])
    return deployed


def deployed_objects(run: TiltRun, deployed: dict[str, str]) -> list[dict]:
    """The Tiltfile's objects as Tilt applies them: each built image's ref with Tilt's tag, and the
    build's entrypoint as the container's command."""
    builds = deployed_builds(run)
    objects = []
    for obj in copy.deepcopy(run.objects):
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                build = builds.get(container["image"])
                if build is not None:
                    container["image"] = deployed[build.ref]
                    if build.entrypoint:
                        container["command"] = list(build.entrypoint)
        objects.append(obj)
    return objects


def live_update(container: str, build: ImageBuild, changed: dict[str, bytes], root: Path) -> None:
    """Tilt's live update of CONTAINER after the local files CHANGED ({path relative to ROOT: content})
    changed: each synced to where BUILD's sync steps put it, then the run steps whose trigger matched (a
    step without trigger always runs)."""
    syncs = [step for step in build.live_update if isinstance(step, Sync)]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path, content in changed.items():
            [destination] = [step.remote_path + path.removeprefix(step.local_path) for step in syncs
                             if path == step.local_path or path.startswith(step.local_path.rstrip("/") + "/")]
            info = tarfile.TarInfo(destination.lstrip("/"))
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    podman("exec", "-i", container, "tar", "-C", "/", "-x", "-f", "-", stdin=archive.getvalue())
    for step in build.live_update:
        if isinstance(step, Run) and (not step.trigger or set(step.trigger) & set(changed)):
            command = ["sh", "-c", step.cmd] if isinstance(step.cmd, str) else list(step.cmd)
            podman("exec", container, *command)
