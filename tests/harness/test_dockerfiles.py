"""The images: hadolint on every Dockerfile, and the properties asked of each service image, which the four
build from one recipe (services/Dockerfile) with the build argument SERVICE."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.recipe import BUILD_ARG, RECIPE, for_service, instructions

APP_SERVICES = ("auth", "gateway", "converter", "notification")
FLASK_PORTS = {"auth": 5000, "gateway": 8080}
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(
    p.relative_to(REPO_ROOT).as_posix()
    for p in [*REPO_ROOT.glob("services/**/Dockerfile"), *REPO_ROOT.glob(".devcontainer/Dockerfile"),
              *REPO_ROOT.glob("tools/standins/images/*/Dockerfile")]
)
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def requirement_names(service: str) -> set:
    names = set()
    for name in (service, "common"):
        for line in (REPO_ROOT / "services" / name / "requirements.txt").read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\[\]-]+)\s*==", line)
            if match:
                names.add(match.group(1).lower())
    return names


def test_the_four_services_share_one_recipe_that_only_their_name_changes():
    assert [d for d in DOCKERFILES if d.startswith("services/")] == ["services/Dockerfile"]
    # The only input that differs between the four builds is the build argument naming the service.
    text = RECIPE.read_text()
    assert [args for keyword, args in instructions(text) if keyword == "ARG"] == [BUILD_ARG]
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(re.findall(r"\$\{?([A-Za-z_]\w*)", code)) == {BUILD_ARG}


def test_a_build_without_the_service_fails_saying_what_to_pass():
    """The recipe's first step after ARG SERVICE stops an unnamed build with a message (not a missing
    `/requirements.txt` further down)."""
    steps = instructions(RECIPE.read_text())
    check = steps[[k for k, _ in steps].index("ARG") + 1]
    assert check[0] == "RUN"
    unnamed = subprocess.run(["/bin/sh", "-c", check[1]], env={}, capture_output=True, text=True)
    assert unnamed.returncode != 0 and "--build-arg SERVICE=auth" in unnamed.stderr
    assert subprocess.run(["/bin/sh", "-c", check[1]], env={BUILD_ARG: "auth"}).returncode == 0


def test_the_entrypoint_execs_python_m_the_service(tmp_path):
    """Exec form, and the shell it starts only names the service and replaces itself: python is PID 1 and
    gets SIGTERM itself. Run here with a `python` that reports its pid and arguments."""
    [entrypoint] = [json.loads(args) for keyword, args in instructions(RECIPE.read_text()) if keyword == "ENTRYPOINT"]
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$$ $*"\n')
    fake.chmod(0o755)
    for name in APP_SERVICES:
        process = subprocess.Popen(entrypoint, stdout=subprocess.PIPE, text=True,
                                   env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin", BUILD_ARG: name})
        output, _ = process.communicate(timeout=10)
        assert output.split() == [str(process.pid), "-m", name]


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
    steps = instructions(for_service(name))
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
    # Installed from the service's lock: exactly its pinned files, hash-checked, nothing resolved.
    own_lock = sources[f"{name}/requirements.lock"][1][-1]
    assert Path(own_lock).parent == Path(own_req).parent
    install = next(i for i, (k, args) in enumerate(base) if k == "RUN" and "pip install" in args)
    assert f"-r {own_lock}" in base[install][1]
    assert {"--no-cache-dir", "--require-hashes", "--no-deps"} <= set(base[install][1].split())
    assert all(sources[source][0] < install for source in
               ("common/requirements.txt", f"{name}/requirements.txt", f"{name}/requirements.lock"))
    assert not any(words[-2] in ("common/common", f"{name}/{name}") for _, words in copies), "code in the base"

    # A non-root user, by number.
    users = [args for k, args in base if k == "USER"]
    assert users, "no USER"
    uid = users[-1]
    # The uid alone: with `uid:gid` the engine cannot copy files in as that user, and compose watch
    # cannot sync (tests/watch shows it working).
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    # The debugger (common.debugger): installed in `dev` alone, as root, from its lock (hashes checked),
    # and the user is the service's again after it; never in `runtime`.
    debugger = [("USER", "0"),
                ("COPY", "common/requirements-debug.lock /opt/requirements/common/requirements-debug.lock"),
                ("RUN", "pip install --no-cache-dir --require-hashes --no-deps "
                        "-r /opt/requirements/common/requirements-debug.lock"),
                ("USER", uid)]
    assert by_stage["dev"][1:5] == debugger, by_stage["dev"]
    assert not any("debug" in args for _k, args in [*base, *by_stage["runtime"]])

    # The code: owned by that user in `dev` (compose watch and Tilt sync into it as that user), by root in
    # `runtime` (the service cannot change it). Nothing else differs between the two.
    for stage, owner, steps_before in (("dev", uid, debugger), ("runtime", None, [])):
        code = [args.split() for k, args in by_stage[stage][1 + len(steps_before):] if k == "COPY"]
        assert [words[-1] for words in code] == ["/app/common", f"/app/{name}"], stage
        assert [words[-2] for words in code] == ["common/common", f"{name}/{name}"], stage
        chowns = {next((w for w in words if w.startswith("--chown=")), None) for words in code}
        owners = {c.removeprefix("--chown=").split(":")[0] if c else None for c in chowns}
        assert owners == {owner}, f"{stage}: {chowns}"
        assert [k for k, _ in by_stage[stage][1 + len(steps_before):]] == ["COPY", "COPY"], stage

    # Exec form (test_the_entrypoint_execs_python_m_the_service runs it), after the user.
    assert [k for k, _ in steps].count("ENTRYPOINT") == 1
    # Ports are the deployment's to publish (compose.yaml, manifests/): the recipe names none.
    assert [args for k, args in steps if k == "EXPOSE"] == []
    if name in FLASK_PORTS:
        assert "gunicorn" in requirement_names(name)
    # Multiprocess metrics are for the gunicorn services alone, so the image does not set them: compose and
    # the manifests do (tests/harness/test_observability.py).
    assert "PROMETHEUS_MULTIPROC_DIR" not in " ".join(args for k, args in steps if k == "ENV")


def test_the_devcontainer_runs_the_services_python():
    base = next(args for k, args in instructions(RECIPE.read_text()) if k == "FROM").split()[0]
    devcontainer = next(args for k, args in instructions((REPO_ROOT / ".devcontainer/Dockerfile").read_text())
                        if k == "FROM")
    assert devcontainer == base


def test_converter_gets_ffmpeg_from_its_python_dependencies():
    assert "imageio-ffmpeg" in requirement_names("converter")
    text = for_service("converter")
    assert "apt-get" not in text and "ffmpeg" not in " ".join(args for k, args in instructions(text) if k == "RUN")


def six_line_blocks(path: Path) -> dict[tuple[str, ...], Path]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return {tuple(lines[i:i + 6]): path for i in range(len(lines) - 5)}


def test_no_block_of_six_lines_is_repeated_among_the_image_recipes():
    seen: dict[tuple[str, ...], Path] = {}
    for dockerfile in DOCKERFILES:
        for block, path in six_line_blocks(REPO_ROOT / dockerfile).items():
            assert block not in seen, f"{path.relative_to(REPO_ROOT)} repeats {seen[block].relative_to(REPO_ROOT)}:\n" \
                + "\n".join(block)
            seen[block] = path


def test_dockerignore_keeps_secrets_venvs_and_caches_out():
    patterns = {
        line.strip()
        for line in (REPO_ROOT / "services/.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in ("**/.venv", "**/.env", "**/__pycache__", "**/*.py[cod]", "**/.pytest_cache"):
        assert required in patterns, f"services/.dockerignore lacks {required}"
    assert not any(p.startswith("!") for p in patterns), "no exception may bring a file back in"
