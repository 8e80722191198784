"""The README and docs/ cite only what the repository has: every file or folder they name exists, every
`file::test` names a test of that file, and every relative link leads somewhere. Paths in backticks
count when they start with a top-level folder or file of the repository."""

import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
# What the repository holds at its top, as git sees it: not what a run left beside it (.venv, .bench ...).
TOP_LEVEL = {name.split("/")[0] for name in subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
    check=True).stdout.splitlines()}
# Files the docs name that belong to other projects (an action's action.yml).
OTHERS_FILES = {"action.yml"}
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
# What a template, a glob or a shell word looks like: not one path.
NOT_A_PATH = re.compile(r"[<>*$?{}|=]|\.\.\.")


@functools.cache
def repository_file_names() -> set[str]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {Path(line).name for line in tracked.splitlines()} | {path.name for path in ROOT.rglob("*.md")}


def cited_names(text: str) -> set[str]:
    """Files named alone (`test_poison.py`): each must be some file of the repository."""
    alone = re.compile(r"[\w.-]+\.(py|ya?ml|md|sh|toml)(::\w+)?")
    words = {word.split("::")[0] for word in CODE.findall(text) if alone.fullmatch(word)}
    return words - TOP_LEVEL - OTHERS_FILES


def cited_paths(text: str) -> set[str]:
    found = set()
    for word in CODE.findall(text):
        word = word.rstrip(".,:;")
        first = word.split("/")[0].split("::")[0]
        if first in TOP_LEVEL and ("/" in word or "." in first) and not NOT_A_PATH.search(word):
            found.add(word)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_path_the_docs_name_exists(doc):
    missing = []
    for cited in sorted(cited_paths(doc.read_text())):
        path, _, test = cited.partition("::")
        defines = (ROOT / path).is_file() and re.search(rf"^\s*(?:async )?def {re.escape(test)}\(",
                                                        (ROOT / path).read_text(), re.M)
        if not (ROOT / path).exists() or (test and not defines):
            missing.append(cited)
    assert not missing, f"{doc.relative_to(ROOT)} names what is not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_file_the_docs_name_alone_is_somewhere_in_the_repository(doc):
    missing = sorted(cited_names(doc.read_text()) - repository_file_names())
    assert not missing, f"{doc.relative_to(ROOT)} names files the repository does not have: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (doc.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_the_check_finds_a_path_that_is_gone():
    assert cited_paths("see `tests/unit/test_gateway.py` and `scripts/nope`, not `<name>/x`") == {
        "tests/unit/test_gateway.py", "scripts/nope"}
    assert not (ROOT / "tests/unit/test_gateway.py").exists()
