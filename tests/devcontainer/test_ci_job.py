"""The users' devcontainer job (.github/workflows/ci.yml), replayed here as GitHub runs it: its steps in
their order, on a fresh checkout that has no .env, as a non-root host user, and its devcontainers/ci
step the way that action runs the Dev Containers CLI (devcontainers/ci v0.3, github-action/dist/index.js:
runMain, devContainerBuild/Up/Exec): `devcontainer build`, then `devcontainer up` with the runner's
GITHUB_OUTPUT/ENV/PATH/STEP_SUMMARY files mounted, then `devcontainer exec ... bash -c <runCmd>`.

The CLI's `build` reads the compose files (`docker compose config`) and never runs initializeCommand
(devcontainers/cli, src/spec-node/devContainersSpecCLI.ts: doBuild); only `up` runs it. So the job
must make .env before the action, or compose stops on the first variable .env should have set.

What differs from a runner, and why it does not matter here: the CLI is the version tests/devcontainer
pins (the action installs the newest 0.x), the compose project has a name of its own (so it never
meets another stack on this engine), and images no registry can give here are stand-ins
(scripts/standins).
"""

import json
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from compose_engine import compose_command
from compose_project import copy_tree
from devcontainer_cli import ROOT, Devcontainer, host_user

pytestmark = pytest.mark.timeout(5400)

WORKFLOW = ROOT / ".github/workflows/ci.yml"
# devcontainers/ci mounts these runner files into the container and names them in its environment.
GITHUB_FILES = {"GITHUB_OUTPUT": "/mnt/github/output", "GITHUB_ENV": "/mnt/github/env",
                "GITHUB_PATH": "/mnt/github/path", "GITHUB_STEP_SUMMARY": "/mnt/github/step-summary"}
# Actions whose work on a runner this machine already has done: the checkout is the fresh copy, and the
# engine's own builder serves where the runner's buildx would.
DONE_HERE = ("actions/checkout@", "docker/setup-buildx-action@")


class Runner:
    """A runner's view of one checkout: its user, its workspace, its GITHUB_* files."""

    def __init__(self, base: Path, user: str | None):
        self.user = user
        self.workspace = copy_tree(base / "mp3converter", repository=True)
        self.files = base / "runner"
        self.files.mkdir()
        for name in GITHUB_FILES:
            (self.files / name.lower()).touch()
        cli = Path(shutil.copytree(ROOT / ".cache" / "devcontainers-cli", base / "cli", symlinks=True))
        compose = shlex.split(compose_command())
        if compose != ["docker", "compose"]:
            compose = [str(shutil.copy2(compose[0], base / "docker-compose"))]
        if user:
            subprocess.run(["chown", "-R", f"{user}:{user}", str(base)], check=True)
        self.devcontainer = Devcontainer(cli / "node_modules" / ".bin" / "devcontainer", compose, self.workspace,
                                         f"mp3converter-dev-ci-{os.getpid()}", user=user)

    def shell(self, script: str, env: dict) -> subprocess.CompletedProcess:
        """A `run:` step: bash -e, in the workspace, with the workflow's and the step's environment."""
        command = ["bash", "-e", "-c", script]
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
        if self.user:
            home = pwd.getpwnam(self.user).pw_dir
            runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
            command = [runuser, "-u", self.user, "--", "env", f"HOME={home}", *command]
        return subprocess.run(command, cwd=self.workspace, env={**base_env, **env}, capture_output=True,
                              text=True, timeout=600)

    def devcontainers_ci(self, inputs: dict) -> list[str]:
        """The action's runMain with these inputs: build, then (with runCmd) up and exec. Returns what
        failed, as the action would report it; [] when the step passes."""
        assert not set(inputs) - {"push", "runCmd"}, f"the replay models push and runCmd only, not {inputs}"
        build = self.devcontainer.run("build")
        outcome = last_json(build.stdout)
        if outcome.get("outcome") != "success":
            return [f"Dev container build failed: {outcome.get('message')} ({build.returncode})",
                    outcome.get("description", ""), build.stderr[-4000:]]
        if not inputs.get("runCmd"):
            return []
        remote_env, mounts = [], []
        for name, target in GITHUB_FILES.items():
            remote_env += ["--remote-env", f"{name}={target}"]
            mounts += ["--mount", f"type=bind,source={self.files / name.lower()},target={target}"]
        up = self.devcontainer.run("up", *remote_env, *mounts)
        outcome = last_json(up.stdout)
        if outcome.get("outcome") != "success":
            return [f"Dev container up failed: {outcome.get('message')} ({up.returncode})",
                    outcome.get("description", ""), up.stderr[-4000:]]
        run = self.devcontainer.run("exec", *remote_env, "bash", "-c", inputs["runCmd"], timeout=3600)
        if run.returncode != 0:
            return [f"Dev container exec failed: (exit code: {run.returncode})", run.stdout[-6000:],
                    run.stderr[-3000:]]
        self.exec_output = run.stdout
        return []


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


@pytest.fixture(scope="module")
def runner(devcontainer_cli, tmp_path_factory):
    """A fresh checkout owned by a non-root user in the docker group, as on GitHub's runners (root only
    where the tests do not run as root)."""
    user = host_user() if os.geteuid() == 0 else None
    base = (Path(pwd.getpwnam(user).pw_dir) / f"ci-job-{os.getpid()}" if user
            else tmp_path_factory.mktemp("ci-job"))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    runner = Runner(base, user)
    try:
        yield runner
    finally:
        runner.devcontainer.down()
        shutil.rmtree(base, ignore_errors=True)


def test_the_devcontainer_job_passes_on_a_fresh_checkout(runner):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["devcontainer"]
    assert not (runner.workspace / ".env").exists(), "a fresh checkout has no .env"
    env = {**{k: str(v) for k, v in workflow.get("env", {}).items()}, **job.get("env", {})}
    ran_the_action = False
    for step in job["steps"]:
        name = step.get("name") or step.get("uses") or step.get("run")
        if "run" in step:
            result = runner.shell(step["run"], {**env, **step.get("env", {})})
            assert result.returncode == 0, f"step {name!r} failed:\n{result.stdout}\n{result.stderr}"
        elif step["uses"].startswith("devcontainers/ci@"):
            failures = runner.devcontainers_ci(step.get("with", {}))
            assert not failures, f"step {name!r} failed:\n" + "\n".join(failures)
            ran_the_action = True
        else:
            assert step["uses"].startswith(DONE_HERE), f"the replay does not know {step['uses']}: model it here"
    assert ran_the_action, "the job has no devcontainers/ci step"
    assert " passed" in runner.exec_output
