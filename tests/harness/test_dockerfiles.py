"""The images: hadolint on every Dockerfile, and the properties the issue asks of each service image."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

APP_SERVICES = ("auth", "gateway", "converter", "notification")
FLASK_PORTS = {"auth": 5000, "gateway": 8080}
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(
    p.relative_to(REPO_ROOT).as_posix()
    for p in [*REPO_ROOT.glob("services/*/Dockerfile"), *REPO_ROOT.glob(".devcontainer/Dockerfile"),
              *REPO_ROOT.glob("tools/standins/images/*/Dockerfile")]
)
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def instructions(path: Path) -> list:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments and blank lines dropped."""
    result, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def requirement_names(service: str) -> set:
    names = set()
    for name in (service, "common"):
        for line in (REPO_ROOT / "services" / name / "requirements.txt").read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\[\]-]+)\s*==", line)
            if match:
                names.add(match.group(1).lower())
    return names


def test_every_service_has_a_dockerfile():
    assert [f"services/{name}/Dockerfile" for name in sorted(APP_SERVICES)] == [
        d for d in DOCKERFILES if d.startswith("services/")
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", dockerfile],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def stages(steps: list) -> dict[str, list]:
    """{stage name: its instructions}, FROM included."""
    result, current = {}, None
    for keyword, args in steps:
        if keyword == "FROM":
            current = args.split()[-1] if " AS " in args.upper() else f"stage{len(result)}"
            result[current] = []
        result[current].append((keyword, args))
    return result


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_image(name):
    steps = instructions(REPO_ROOT / "services" / name / "Dockerfile")
    by_stage = stages(steps)

    # Pinned slim Python base, the same for every service; then the two images built on it: `dev`, and
    # `runtime`, the last, so the default of a plain `docker build`.
    assert list(by_stage) == ["base", "dev", "runtime"], list(by_stage)
    base = by_stage["base"]
    base_image = base[0][1].split()[0]
    assert PINNED_PYTHON.match(base_image), base_image
    assert by_stage["dev"][0] == ("FROM", "base AS dev") and by_stage["runtime"][0] == ("FROM", "base AS runtime")
    keywords = [k for k, _ in base]

    env = " ".join(args for k, args in base if k == "ENV")
    assert "PYTHONPATH=/app" in env
    assert ("WORKDIR", "/app") in base

    # Requirements in their own layer, before the code, keeping their relative layout.
    copies = [(i, args.split()) for i, (k, args) in enumerate(base) if k == "COPY"]
    sources = {words[-2]: (i, words) for i, words in copies}
    common_req = sources["common/requirements.txt"][1][-1]
    own_req = sources[f"{name}/requirements.txt"][1][-1]
    assert Path(own_req).parent.parent == Path(common_req).parent.parent, "the -r ../common/ path must resolve"
    assert Path(own_req).name == "requirements.txt" and Path(own_req).parent.name == name
    install = next(i for i, (k, args) in enumerate(base) if k == "RUN" and "pip install" in args)
    assert f"-r {own_req}" in base[install][1]
    assert "--no-cache-dir" in base[install][1]
    assert sources["common/requirements.txt"][0] < install and sources[f"{name}/requirements.txt"][0] < install
    assert not any(words[-2] in ("common/common", f"{name}/{name}") for _, words in copies), "code in the base"

    # A non-root user, by number.
    users = [args for k, args in base if k == "USER"]
    assert users, "no USER"
    uid = users[-1]
    # The uid alone: with `uid:gid` the engine cannot copy files in as that user, and compose watch
    # cannot sync (tests/watch shows it working).
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    # The code: owned by that user in `dev` (compose watch and Tilt sync into it as that user), by root in
    # `runtime` (the service cannot change it). Nothing else differs between the two.
    for stage, owner in (("dev", uid), ("runtime", None)):
        code = [args.split() for k, args in by_stage[stage] if k == "COPY"]
        assert [words[-1] for words in code] == ["/app/common", f"/app/{name}"], stage
        assert [words[-2] for words in code] == ["common/common", f"{name}/{name}"], stage
        chowns = {next((w for w in words if w.startswith("--chown=")), None) for words in code}
        owners = {c.removeprefix("--chown=").split(":")[0] if c else None for c in chowns}
        assert owners == {owner}, f"{stage}: {chowns}"
        assert [k for k, _ in by_stage[stage]] == ["FROM", "COPY", "COPY"], stage

    # Exec form, so that python is PID 1 and gets SIGTERM itself.
    entrypoints = [args for k, args in steps if k == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", name]

    exposed = [args for k, args in steps if k == "EXPOSE"]
    if name in FLASK_PORTS:
        assert exposed == [str(FLASK_PORTS[name])]
        assert "gunicorn" in requirement_names(name)
    else:
        assert exposed == []


def test_every_service_uses_the_same_base():
    bases = {
        next(args for k, args in instructions(REPO_ROOT / "services" / n / "Dockerfile") if k == "FROM")
        for n in APP_SERVICES
    }
    assert len(bases) == 1, bases
    devcontainer = next(args for k, args in instructions(REPO_ROOT / ".devcontainer/Dockerfile") if k == "FROM")
    assert devcontainer == next(iter(bases)).split()[0], "the devcontainer runs the services' Python"


def test_converter_gets_ffmpeg_from_its_python_dependencies():
    assert "imageio-ffmpeg" in requirement_names("converter")
    text = (REPO_ROOT / "services/converter/Dockerfile").read_text()
    assert "apt-get" not in text and "ffmpeg" not in " ".join(
        args for k, args in instructions(REPO_ROOT / "services/converter/Dockerfile") if k == "RUN"
    )


def test_dockerignore_keeps_secrets_venvs_and_caches_out():
    patterns = {
        line.strip()
        for line in (REPO_ROOT / "services/.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in ("**/.venv", "**/.env", "**/__pycache__", "**/*.py[cod]", "**/.pytest_cache"):
        assert required in patterns, f"services/.dockerignore lacks {required}"
    assert not any(p.startswith("!") for p in patterns), "no exception may bring a file back in"
