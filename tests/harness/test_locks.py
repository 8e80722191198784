"""The lock files agree with the requirements files they are made from (scripts/lock).

The images install their service's lock and .venv installs requirements-dev.lock, each with
--require-hashes: a requirement changed without running scripts/lock would never reach them. Offline:
this reads the files, it does not resolve again."""

import re
from pathlib import Path

import pytest

from tests.requirements import pins

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    "requirements-dev.lock": "requirements-dev.txt",
    "services/common/requirements-debug.lock": "requirements-debug.txt",
    **{f"services/{name}/requirements.lock": "requirements.txt"
       for name in ("auth", "gateway", "converter", "notification")},
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]+\])?==([^\s;\\#]+)")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, list[str]]:
    """{name==version: its hashes} of a lock file."""
    entries, current = {}, None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            current = f"{normalized(match[1])}=={match[2]}"
            entries[current] = []
        elif current and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            entries[current].append(digest[1])
    return entries


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_is_what_scripts_lock_writes_from_its_requirements(lock):
    path = ROOT / lock
    source = LOCKS[lock]
    header = path.read_text().splitlines()[1].strip("# ").strip()
    assert header == (f"uv pip compile --universal --python-version 3.11 --generate-hashes {source} "
                      f"-o {path.name}"), "run scripts/lock"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_of_the_requirements_is_locked_at_its_version(lock):
    path = ROOT / lock
    entries = locked(path)
    wanted = {normalized(name.split("[")[0]): version for name, version in pins(path.parent / LOCKS[lock]).items()}
    assert wanted
    missing = {f"{name}=={version}" for name, version in wanted.items()} - set(entries)
    assert not missing, f"{lock} lacks {sorted(missing)}: run scripts/lock"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_package_has_its_hashes(lock):
    entries = locked(ROOT / lock)
    assert entries and all(entries.values()), [name for name, hashes in entries.items() if not hashes]
