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
    assert "ubuntu-24.04-arm" in jobs["arm64"]["runs-on"]


# ---------------------------------------------------------------- the commands are the README's


def test_the_readmes_kubernetes_commands_are_what_the_workflow_runs(workflow):
    """The README's Kubernetes block (`tilt ci`, its non-interactive form, for `tilt up`), the no-Tilt
    block of docs/kubernetes.md, and the README's curl commands through the port-forwarded gateway."""
    readme = (ROOT / "README.md").read_text()
    kubernetes = (ROOT / "docs/kubernetes.md").read_text()
    section = readme[readme.index("**Kubernetes**"):readme.index("**Devcontainer**")]
    without_tilt = kubernetes[kubernetes.index("## Without Tilt"):kubernetes.index("### Network policies")]
    curl = readme[readme.index("## Try it with curl"):readme.index("## The other ways to run it")]
    wanted = []
    for text in (section, without_tilt, curl):
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


@pytest.mark.parametrize("job", ["test", "compose", "kubernetes", "images", "arm64", "arm64-skipped"])
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


# ---------------------------------------------------------------- what the runners and the tools do


def expression(text: str, context: dict):
    """The value of a GitHub Actions expression (`${{ ... }}` or an `if:`) made of context names, string
    literals, !, ==, !=, && and || (the subset this workflow uses; anything else is refused). As on
    GitHub, && and || give one of their operands, and an unset repository variable is ''."""
    source = text.strip().removeprefix("${{").removesuffix("}}").strip()
    python = []
    for token in re.findall(r"'[^']*'|[\w.-]+|&&|\|\||==|!=|!|\(|\)|\S", source):
        if token.startswith("'"):
            python.append(repr(token[1:-1]))
        elif token in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[token])
        elif token in ("==", "!=", "(", ")"):
            python.append(token)
        elif re.fullmatch(r"(github|vars)(\.[\w-]+)+", token):
            python.append(f"context.get({token!r}, '')")
        else:
            raise AssertionError(f"the test does not evaluate {token!r} in {text!r}")
    return eval("".join(python), {"context": context})  # noqa: S307 (built from the tokens above only)


def runs(job: dict, context: dict) -> bool:
    return "if" not in job or bool(expression(job["if"], context))


def test_the_expression_reader_reads_as_github_does():
    context = {"github.event.repository.private": True, "vars.X": ""}
    assert expression("${{ vars.X || 'fallback' }}", context) == "fallback"
    assert expression("!github.event.repository.private || vars.X != ''", context) is False
    assert expression("github.event.repository.private && vars.X == ''", context) is True


def test_the_devcontainer_job_makes_env_before_devcontainers_ci_builds(workflow):
    """devcontainers/ci runs `devcontainer build` first, which reads the compose files without running
    initializeCommand: .env must exist before it (tests/devcontainer/test_ci_job.py replays the job)."""
    job = steps(workflow, "devcontainer")
    action = next(i for i, s in enumerate(job) if s.get("uses", "").startswith("devcontainers/ci@"))
    makes_env = [i for i, s in enumerate(job) if "scripts/init-env" in logical_lines(s.get("run", ""))]
    assert makes_env and makes_env[0] < action, "no `scripts/init-env` step before devcontainers/ci"


def test_buildx_is_set_up_before_devcontainers_ci(workflow):
    """Without buildx, devcontainers/ci warns and passes having run nothing."""
    job = steps(workflow, "devcontainer")
    action = next(i for i, s in enumerate(job) if s.get("uses", "").startswith("devcontainers/ci@"))
    buildx = [i for i, s in enumerate(job) if s.get("uses", "").startswith("docker/setup-buildx-action@")]
    assert buildx and buildx[0] < action
    assert job[buildx[0]].get("with", {}).get("driver") == "docker", "the engine's builder: `up` needs the image"


def minikube_starts(workflow: dict) -> list[str]:
    lines = [line for job in workflow["jobs"] for line in run_lines(workflow, job)]
    lines += documented_commands()
    starts = [line for line in lines if line.startswith("minikube start")]
    assert starts, "no `minikube start` found"
    return starts


def test_minikube_runs_docker_as_its_container_runtime(workflow):
    """minikube defaults to containerd from v1.39; Tilt builds into minikube only when its runtime is Docker."""
    for line in minikube_starts(workflow):
        assert "--container-runtime=docker" in line.split(), line


def test_minikube_asks_for_no_more_cpus_than_a_private_repositorys_runner_has(workflow):
    """`--cpus N` above the machine's count stops minikube; private repositories' runners have 2."""
    for line in minikube_starts(workflow):
        cpus = re.search(r"--cpus[= ](\S+)", line)
        assert cpus is None or cpus[1] == "max" or int(cpus[1]) <= 2, line


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize("arm64_runner", ["", "my-arm64-runner"], ids=["no-variable", "ARM64_RUNNER"])
def test_the_arm64_job_runs_where_an_arm64_runner_exists_and_says_why_where_not(workflow, private, arm64_runner):
    jobs = workflow["jobs"]
    context = {"github.event.repository.private": private, "vars.ARM64_RUNNER": arm64_runner}
    has_runner = not private or bool(arm64_runner)
    assert runs(jobs["arm64"], context) is has_runner
    assert runs(jobs["arm64-skipped"], context) is not has_runner, "exactly one of the two runs"
    if has_runner:
        assert expression(jobs["arm64"]["runs-on"], context) == (arm64_runner or "ubuntu-24.04-arm")
    else:
        assert not jobs["arm64-skipped"]["runs-on"].endswith("-arm")
        said = " ".join(run_lines(workflow, "arm64-skipped"))
        assert "::notice" in said and "public repositories only" in said and "ARM64_RUNNER" in said
