"""Every pinned version exists upstream: each image tag, tool version and action the project pins is in
tests/harness/pins.yaml with the upstream record that shows it (a tag that does not exist breaks every
build of every user). And the workflow's docker/* actions run on Node 24, as their action.yml says at
the pinned commit; any other action that does not says why in the same file."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PINS = yaml.safe_load((ROOT / "tests/harness/pins.yaml").read_text())
WORKFLOW = ROOT / ".github/workflows/ci.yml"
IMAGE = re.compile(r"^\s*(?:-\s*)?(?:image:\s*|FROM\s+(?:--\S+\s+)*)([a-z0-9./-]+:[\w.-]+)", re.MULTILINE)
ACTION = re.compile(r"uses:\s*([\w.-]+/[\w.-]+@[0-9a-f]{40})\s*#\s*(\S+)")
BUILT_HERE = "mp3converter/"


def tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def pinned_images() -> dict[str, list[str]]:
    """{image:tag: files that pin it}, from every Dockerfile and YAML file outside the tests."""
    found: dict[str, list[str]] = {}
    for path in tracked_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("tests/") or not (path.name == "Dockerfile" or path.suffix in (".yaml", ".yml")):
            continue
        for image in IMAGE.findall(path.read_text()):
            if not image.startswith(BUILT_HERE):
                found.setdefault(image, []).append(relative)
    return found


def pinned_tools() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    tilt = workflow["jobs"]["kubernetes"]["env"]["TILT_VERSION"]
    cli = re.search(r'^CLI_VERSION = "(.+)"$', (ROOT / "tools/devcontainer_cli.py").read_text(), re.MULTILINE)
    return [f"tilt {tilt}", f"@devcontainers/cli {cli[1]}"]


def pinned_actions() -> dict[str, str]:
    return dict(ACTION.findall(WORKFLOW.read_text()))


def test_the_pins_are_found():
    """The search itself: the Python base, a backend of compose and the manifests, the workflow's MariaDB."""
    images = pinned_images()
    assert any(image.startswith("python:") for image in images)
    assert any(image.startswith("mariadb:") for image in images)
    assert any(image.startswith("mongo:") and "manifests/base/mongodb.yaml" in files for image, files in images.items())
    assert len(pinned_actions()) >= 5


@pytest.mark.parametrize("image", sorted(pinned_images()))
def test_every_pinned_image_tag_has_its_upstream_record(image):
    files = ", ".join(pinned_images()[image])
    assert PINS["images"].get(image), (
        f"{image} (in {files}) has no upstream record in tests/harness/pins.yaml: pin a tag upstream shows "
        "(docker-library/official-images library/<name>, the project's release) and add it with its source")


def test_no_record_is_left_for_a_pin_that_is_gone():
    assert set(PINS["images"]) == set(pinned_images()), "pins.yaml lists images nothing pins any more"
    assert set(PINS["tools"]) == set(pinned_tools())
    assert set(PINS["actions"]) == set(pinned_actions())


@pytest.mark.parametrize("tool", pinned_tools())
def test_every_pinned_tool_version_has_its_upstream_record(tool):
    assert PINS["tools"].get(tool), f"{tool} has no upstream record in tests/harness/pins.yaml"


@pytest.mark.parametrize("action", sorted(pinned_actions()))
def test_every_action_is_the_tag_it_says_and_runs_on_node_24_or_says_why_not(action):
    record = PINS["actions"].get(action)
    assert record, f"{action} has no upstream record in tests/harness/pins.yaml"
    assert record["version"] == pinned_actions()[action], "the workflow's comment names another tag"
    if action.startswith("docker/"):
        assert record["runs"] == "node24", f"{action}: docker/* actions have majors on Node 24"
    assert record["runs"] == "node24" or record.get("why"), f"{action} runs on {record['runs']}: say why"
