"""The users' CI (.github/workflows/ci.yml), checked as deeply as can be without running it.

actionlint (with shellcheck on every run step) and the GitHub workflow schema; every action pinned by
its full commit; the jobs the project needs; and the commands: the README's Kubernetes and curl commands
and the devcontainer's are what the workflow runs, and every other command it runs is a documented one or
CI's own plumbing, listed here with its reason.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/ci.yml"
DOCS = ("README.md", "docs/kubernetes.md", "docs/compose.md")
BIN = Path(sys.executable).parent
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# Shell structure, and what CI does that a person does not: each with its reason.
CI_PLUMBING = {
    r"^(for .*; do|do|done.*|fi|then|else|\}|\{|if .*; then( .*)?|.*\(\) \{.*)$": "shell structure",
    r"^\[ .* \]( \|\| \[ .* \])?( && break)?$": "a test of the last answer",
    r"^(echo|sleep|exit|grep -q|awk) ": "shell plumbing",
    r"^(mkdir -p |printf '#!/bin/sh|chmod \+x ).*(\.local/bin|rabbitmqctl)": "rabbitmqctl of the RabbitMQ container",
    r'^echo "\$(HOME/\.local/bin|RUNNER_TEMP)" >> "\$GITHUB_PATH"$': "a tool on PATH",
    r"^curl -fsSL \"https://github\.com/tilt-dev/tilt/releases/download/": "install Tilt (docs link its install page)",
    r"^tar -xz -C \"\$RUNNER_TEMP\" tilt$": "install Tilt",
    r"^sudo apt-get update -q && sudo apt-get install .* ffmpeg$": "ffmpeg, to make a test video",
    r"^ffmpeg -loglevel error -f lavfi ": "a test video",
    r"^(ffprobe|awk) ": "the MP3's duration",
    r"^(JOB_ID|STATUS|MP3_FID|NEXT_CURSOR|IP|codes)=\$\(": "reading an answer",
    r"^kubectl -n mp3converter wait --for=condition=Ready pod --all": "wait until every pod is ready",
    r"^kubectl -n mp3converter (get|describe|logs) ": "what went wrong",
    r"^kubectl -n mp3converter exec \"deploy/\$1\" -- python -c \"import socket": "a connection from inside a pod",
    r"^(if )?connects \w+ [\w.]+ \d+": "the network policies' checks",
    r"^curl (-sf? )?(-o /dev/null -w .* )?--(resolve|cacert) ": "the Ingress's checks",
    r"^sed -i 's\|\^# components:\|components:\|; ": "uncomment the TLS component, as docs/kubernetes.md says",
    r"^docker compose version$": "which Compose runs (docs/compose.md)",
    r"^docker run --rm --platform linux/arm64 --read-only --tmpfs /tmp ": "the arm64 image starts read-only",
    r"^python -c \"import socket, sys; socket.create_connection": "a connection from inside a pod",
    r"^-c \"import imageio_ffmpeg, subprocess": "the arm64 image's ffmpeg runs",
    r"^\"mp3converter/\$SERVICE:arm64\" -c \"import \$SERVICE.__main__\"$": "the arm64 image starts",
    r"^https://mp3converter\.test/healthz && exit 0$": "the Ingress's checks",
    r"^done \| sort \| uniq -c\)$": "the Ingress's checks",
    r"^for _ in \$\(seq 30\); do curl -sf http://localhost:8080/healthz && break; sleep 1; done$":
        "wait for the port-forward",
}  # fmt: skip


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def logical_lines(script: str) -> list[str]:
    """The lines of a run step, continuation lines joined and pipes onto the next line folded in."""
    lines, pending = [], ""
    for raw in script.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s+#\s.*$", "", line)
        pending = f"{pending} {line}".strip() if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending.endswith("|"):
            continue
        lines.append(pending)
        pending = ""
    return lines


def run_lines(workflow: dict, job: str) -> list[str]:
    return [line for step in steps(workflow, job) if "run" in step for line in logical_lines(step["run"])]


def documented_commands() -> list[str]:
    """Each command of the ```sh blocks of the README and docs/*.md, <placeholders> as shell variables."""
    commands = []
    for path in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", (ROOT / path).read_text(), re.DOTALL):
            for line in logical_lines(block):
                commands.append(re.sub(r"<(\w+)>", lambda m: "$" + m.group(1).upper(), line))
    return commands


def is_documented(line: str, documented: list[str]) -> bool:
    if any(command in line for command in documented):
        return True
    # `scripts/test [pytest args]`: the README runs parts of the suite by name.
    return bool(re.fullmatch(r"scripts/test( (tests/\w+|-m \"not compose\"))*", line))


def is_plumbing(line: str) -> bool:
    return any(re.search(pattern, line) for pattern in CI_PLUMBING)


# ---------------------------------------------------------------- tools


def test_actionlint_with_shellcheck_finds_nothing():
    result = subprocess.run([str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), "-no-color",
                             str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_and_shellcheck_do_fail_on_a_broken_workflow(tmp_path):
    """The check can fail: a wrong expression and an unquoted variable in a run step are both reported."""
    broken = tmp_path / ".github/workflows/ci.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text().replace("SERVICE=${{ matrix.service }}", "SERVICE=${{ matrix.servise }}", 1)
    text = text.replace('cut -d= -f2-)\n', 'cut -d= -f2-)\n          ls $EMAIL\n', 1)
    broken.write_text(text)
    result = subprocess.run([str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), "-no-color",
                             str(broken)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "servise" in result.stdout and "SC2086" in result.stdout, result.stdout


def test_the_workflow_matches_githubs_schema():
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                             str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_script_passes_shellcheck():
    scripts = [path for path in (ROOT / "scripts").iterdir()
               if path.is_file() and path.read_text().startswith("#!/usr/bin/env bash")]
    scripts += [ROOT / "scripts/_venv.sh", ROOT / ".ci/run", ROOT / "init/rabbitmq-definitions.sh"]
    result = subprocess.run([str(BIN / "shellcheck"), "-x", "-P", "SCRIPTDIR", *map(str, scripts)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------- pins and jobs


def test_every_action_is_pinned_by_its_full_commit_with_the_version_beside_it(workflow):
    lines = WORKFLOW.read_text().splitlines()
    for job, body in workflow["jobs"].items():
        for step in body["steps"]:
            if "uses" in step:
                assert PINNED_ACTION.match(step["uses"]), f"{job}: {step['uses']} is not pinned by commit"
                line = next(line for line in lines if f"uses: {step['uses']}" in line)
                assert re.search(r"# v\d", line), f"{job}: say which version {step['uses']} is"


def test_the_jobs_the_project_needs(workflow):
    jobs = workflow["jobs"]
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in jobs.items():
        assert job.get("timeout-minutes", 0) > 0, f"{name}: no timeout"
    services = jobs["test"]["services"]
    assert {"mariadb", "rabbitmq"} <= set(services)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["rabbitmq"]["image"] == compose["rabbitmq"]["image"], "the broker compose and CI run"
    assert re.fullmatch(r"mariadb:\d+\.\d+\.\d+", services["mariadb"]["image"])
    assert "scripts/test tests/compose" in run_lines(workflow, "compose")
    assert set(jobs["kubernetes"]["strategy"]["matrix"]["way"]) == {"tilt", "kubectl"}
    [devcontainer] = [s for s in steps(workflow, "devcontainer") if s.get("uses", "").startswith("devcontainers/ci@")]
    assert "configFile" not in devcontainer.get("with", {}), "the repository's own .devcontainer/devcontainer.json"
    builds = [s for s in steps(workflow, "images") if s.get("uses", "").startswith("docker/build-push-action@")]
    assert any(set(s["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"} for s in builds)
    assert set(jobs["images"]["strategy"]["matrix"]["service"]) == {"auth", "gateway", "converter", "notification"}
    assert jobs["arm64"]["runs-on"].endswith("-arm")


# ---------------------------------------------------------------- the commands are the README's


def test_the_readmes_kubernetes_commands_are_what_the_workflow_runs(workflow):
    """The Tilt block (`tilt ci`, its non-interactive form, for `tilt up`), the no-Tilt block, and the
    README's curl commands through the port-forwarded gateway."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Kubernetes"):readme.index("## Benchmarks")]
    curl = readme[readme.index("## Try it with curl"):readme.index("## The API")]
    wanted = []
    for text in (section, curl):
        for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
            wanted += [re.sub(r"<(\w+)>", lambda m: "$" + m.group(1).upper(), line) for line in logical_lines(block)]
    ran = "\n".join(run_lines(workflow, "kubernetes"))
    for command in wanted:
        command = "tilt ci" if command == "tilt up" else command
        assert command in ran, f"the README says `{command}`; the workflow's kubernetes job never runs it"


def test_the_devcontainer_job_runs_the_documented_command(workflow):
    [step] = [s for s in steps(workflow, "devcontainer") if "runCmd" in s.get("with", {})]
    assert is_documented(step["with"]["runCmd"], documented_commands())
    assert step["with"]["runCmd"] in (ROOT / "docs/compose.md").read_text()


@pytest.mark.parametrize("job", ["test", "compose", "kubernetes", "images", "arm64"])
def test_every_command_the_workflow_runs_is_documented_or_ci_plumbing(workflow, job):
    documented = documented_commands()
    strangers = [line for line in run_lines(workflow, job)
                 if not is_documented(line, documented) and not is_plumbing(line)]
    assert not strangers, f"{job} runs what no document gives (document it, or say why in CI_PLUMBING): {strangers}"


def test_the_ci_tools_it_needs_are_on_githubs_runners_or_installed_by_it(workflow):
    """minikube, kubectl, jq and Docker come with GitHub's ubuntu-24.04 image; Tilt and ffmpeg are installed."""
    ran = "\n".join(run_lines(workflow, "kubernetes"))
    assert "tilt-dev/tilt/releases/download" in ran and "ffmpeg" in ran
    assert shutil.which("true")  # (nothing to install here: the workflow runs there)
