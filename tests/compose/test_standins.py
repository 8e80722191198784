"""scripts/standins (standins): the images it provides are exactly those compose.yaml and the
Dockerfiles name; a second run changes nothing; a stand-in says what it stands in for; a real image
is never replaced."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from standins import build as standins
from tests.containers import docker

ROOT = Path(__file__).resolve().parents[2]


def test_the_wanted_images_are_read_from_compose_yaml_and_the_dockerfiles():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    pulled = {s["image"] for s in services.values() if "build" not in s}
    bases, stages = set(), set()
    for path in [ROOT / "services/Dockerfile", ROOT / ".devcontainer/Dockerfile"]:
        for words in (line.split() for line in path.read_text().splitlines() if line.startswith("FROM ")):
            if words[1] not in stages:
                bases.add(words[1])
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
    assert set(standins.wanted_images()) == pulled | bases
    recipes = [image for image in standins.wanted_images() if image.rsplit(":", 1)[0] in standins.KINDS]
    assert set(standins.wanted_images()) - set(recipes) <= {
        s["image"] for s in services.values() if "observe" in s.get("profiles", [])
    }, "only the observe profile's tools may lack a stand-in"
    for image in recipes:
        assert (standins.RECIPES / standins.kind(image) / "Dockerfile").is_file(), image


def test_a_second_run_changes_nothing_and_every_stand_in_names_its_image(container_images):
    again = subprocess.run([sys.executable, "-m", "standins"], capture_output=True, text=True,
                           timeout=600, cwd=ROOT, check=True).stdout
    assert all(line.endswith(("(kept)", "no stand-in recipe")) for line in again.splitlines()), again
    for image in standins.wanted_images():
        if standins.labels(image) is None:  # no recipe, and no registry to pull it from (Jaeger, Grafana)
            assert image.rsplit(":", 1)[0] not in standins.KINDS, image
            continue
        labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)) or {}
        assert labels.get(standins.LABEL) in (None, image), f"{image}: {labels}"


@pytest.fixture
def real_image(docker_engine):
    """A label-less image (as a pulled one would be) under a name the stand-ins would otherwise make."""
    name = "python:0.0.0-standins-test"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        data = b"a real image\n"
        info = tarfile.TarInfo("REAL")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "import", "-", name], input=archive.getvalue(), capture_output=True, check=True)
    yield name
    docker("image", "rm", name, check=False)


def test_a_real_image_is_never_replaced(real_image, monkeypatch):
    before = docker("image", "inspect", "--format", "{{.Id}}", real_image).strip()
    monkeypatch.setattr(standins, "wanted_images", lambda root=ROOT: [real_image])
    monkeypatch.setattr(standins, "build", lambda image, name: pytest.fail(f"would build over {image}"))

    assert standins.ensure() == {real_image: "real (kept)"}
    assert docker("image", "inspect", "--format", "{{.Id}}", real_image).strip() == before
