"""The update routine: .github/renovate.json, against Renovate's own schema, covering every pin.

Renovate finds pins through its managers; each manager reads the files its patterns match (its default
ones, as Renovate documents them, unless the configuration sets others). Every file of the project that
pins an image, a Python package or an action must be matched by an enabled manager, the custom manager
must match each version the workflow marks for it, and every pin must be within the release lines the
configuration allows (so that Renovate proposes patches, and no pin is already out of its own rules).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import check_jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".github/renovate.json"
SCHEMA = Path(sys.executable).parent
# Renovate's default managerFilePatterns for the managers the project uses.
DEFAULT_PATTERNS = {
    "dockerfile": [r"(^|/|\.)([Dd]ocker|[Cc]ontainer)file$", r"(^|/)([Dd]ocker|[Cc]ontainer)file[^/]*$"],
    "docker-compose": [r"(^|/)(?:docker-)?compose[^/]*\.ya?ml$"],
    "pip_requirements": [r"(^|/)[\w-]*requirements([-.]\w+)?\.(txt|pip)$"],
    "pip-compile": [],
    "github-actions": [r"(^|/)(workflow-templates|\.(?:github|gitea|forgejo)/(?:workflows|actions))/.+\.ya?ml$"],
    "kubernetes": [],
}
IMAGE = re.compile(r"^\s*(?:-\s*)?(?:image:\s*|FROM\s+)([a-z0-9./-]+):([\w.-]+)", re.MULTILINE)


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(CONFIG.read_text())


def files_with_pins() -> dict[str, list[Path]]:
    """{manager that must read it: the project's files with pins of that kind}."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    tracked += [str(p.relative_to(ROOT)) for p in (ROOT / ".github").rglob("*") if p.is_file()]
    paths = sorted({ROOT / p for p in tracked if (ROOT / p).is_file()})
    relative = {p: p.relative_to(ROOT).as_posix() for p in paths}
    return {
        "dockerfile": [p for p in paths if p.name == "Dockerfile"],
        "docker-compose": [p for p in paths if re.fullmatch(r"(.*/)?compose[^/]*\.yaml", relative[p])],
        "pip_requirements": [p for p in paths if p.name.startswith("requirements") and p.suffix == ".txt"],
        "pip-compile": [p for p in paths if p.name.startswith("requirements") and p.suffix == ".lock"],
        "github-actions": [p for p in paths if relative[p].startswith(".github/workflows/")],
        "kubernetes": [p for p in paths if relative[p].startswith("manifests/") and p.suffix == ".yaml"
                       and IMAGE.search(p.read_text())],
    }


def regex(text: str) -> str:
    """Renovate writes a regular expression between slashes: /^python$/."""
    return text[1:-1] if len(text) > 1 and text.startswith("/") and text.endswith("/") else text


def patterns(config: dict, manager: str) -> list[str]:
    own = config.get(manager, {}).get("managerFilePatterns")
    return [regex(pattern) for pattern in (own if own is not None else DEFAULT_PATTERNS[manager])]


def test_the_configuration_matches_renovates_schema():
    result = subprocess.run([str(SCHEMA / "check-jsonschema"), "--builtin-schema", "vendor.renovate", str(CONFIG)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_option_is_unknown_to_renovate(config):
    """Renovate's schema lets unknown options through; Renovate itself ignores them."""
    vendored = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/renovate.json"
    schema = json.loads(vendored.read_text())
    known = set(schema["properties"])
    assert set(config) - {"$schema"} <= known, set(config) - known
    rule_keys = set(schema["definitions"]["packageRules"]["items"]["allOf"][0]["properties"])
    for rule in config["packageRules"]:
        assert set(rule) <= rule_keys, set(rule) - rule_keys
    managers = set(schema["definitions"]["enabledManagers"]["items"]["enum"])
    assert set(config["enabledManagers"]) <= managers


@pytest.mark.parametrize("manager", sorted(DEFAULT_PATTERNS))
def test_every_file_with_pins_is_read_by_an_enabled_manager(config, manager):
    assert manager in config["enabledManagers"]
    files = files_with_pins()[manager]
    assert files, f"no file for {manager}?"
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        assert any(re.search(pattern, name) for pattern in patterns(config, manager)), f"{manager} never reads {name}"


def test_the_custom_manager_reads_every_version_the_workflow_marks(config):
    [custom] = config["customManagers"]
    text = (ROOT / ".github/workflows/ci.yml").read_text()
    marked = re.findall(r"^\s*# renovate: .*\n.*$", text, re.MULTILINE)
    assert marked, "the workflow downloads Tilt by version: mark it for Renovate"
    for lines in marked:
        match = re.search(custom["matchStrings"][0].replace("(?<", "(?P<"), lines)
        assert match and match.group("currentValue") and match.group("depName"), lines


def allowed(config: dict, name: str) -> str | None:
    rules = [r for r in config["packageRules"] if name in r.get("matchPackageNames", []) and "allowedVersions" in r]
    return regex(rules[0]["allowedVersions"]) if rules else None


def test_every_image_pin_is_within_its_allowed_release_line(config):
    found = {}
    for manager in ("dockerfile", "docker-compose", "kubernetes", "github-actions"):
        for path in files_with_pins()[manager]:
            for name, tag in IMAGE.findall(path.read_text()):
                found.setdefault(name, set()).add(tag)
    for name in ("python", "mysql", "mongo", "rabbitmq"):
        assert name in found, name
        assert allowed(config, name), f"no release line for {name}"
        for tag in found[name]:
            assert re.match(allowed(config, name), tag), f"{name}:{tag} is outside {allowed(config, name)}"
    # One tag per image in the whole project: compose, the manifests and CI move together.
    assert all(len(tags) == 1 for name, tags in found.items() if name != "python"), found
    assert len(found["python"]) == 1, found["python"]


def test_the_services_own_images_are_not_looked_up(config):
    rule = next(r for r in config["packageRules"] if r.get("enabled") is False)
    assert re.match(regex(rule["matchPackageNames"][0]), "mp3converter/gateway")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert compose["gateway"]["image"].startswith("mp3converter/")


def test_actions_are_pinned_by_digest_and_kept_so(config):
    assert "helpers:pinGitHubActionDigests" in config["extends"]
