"""edit-to-live: from saving a file to the new code answering, side by side in the ways of running the stack.

- compose watch (`docker compose up --watch` in a copy of the tree, as typed): the gateway (its /healthz
  on the published port), auth (its /healthz, asked from inside its container), and the converter with
  a conversion in flight (the edited handler logs the next message it takes: the one it handed back);
- run-local --reload (a copy of the tree on PYTHONPATH): the gateway's /healthz;
- the devcontainer (`devcontainer up` on a copy of the tree, by the pinned Dev Containers CLI): run-local
  --reload inside it, its file edited from inside, where VS Code's editor writes it.

Each repetition edits a copy, never this checkout, and times from the write to the first answer of the new
code; the lines the stack prints meanwhile, stamped as they arrive, split that time into what dominates it:
the sync (compose noticing the change and copying it), the reload (gunicorn noticing it; a consumer handing
its message back and its container restarting; run-local stopping), and the start of the new code (its
imports, connections, first answer). Beside them, the import time of each service's code in a fresh
interpreter. Targets: 2 s for the HTTP services, 5 s for a consumer.
"""

import argparse
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.util import Row, median, verdict
from compose_engine import compose_command, compose_problem, engine_problem
from compose_project import (
    ROOT,
    compose_sees_only,
    copy_tree,
    ensure_sync_user,
    free_port,
    read_env,
    wait_ready,
    write_stack_env,
)
from devcontainer_cli import CLI, Devcontainer, host_user, install_cli, owned_by
from sample_media import make_video

HTTP_TARGET = 2.0
CONSUMER_TARGET = 5.0
GATEWAY_HEALTH = Path("services/gateway/gateway/api/health.py")
IMPORTS = {"gateway": "gateway.app", "auth": "auth.app", "converter": "converter.handler",
           "notification": "notification.handler"}


class StampedLines:
    """A process's output, each line stamped (time.time()) as it arrives, read in a thread."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.time(), line.rstrip()))

    def first(self, pattern: str, after: float, timeout: float = 120) -> float:
        """When the first line matching `pattern` arrived after `after` (waits up to `timeout` for it)."""
        regex = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for stamp, line in list(self.lines):
                if stamp >= after and regex.search(line):
                    return stamp
            time.sleep(0.02)
        raise TimeoutError(f"no line matching {pattern!r} within {timeout} s")


def _timestamped(line: str) -> tuple[float | None, str]:
    """(seconds since the epoch, the rest) of a `compose logs --timestamps` line: `name-1  | 2026-...Z text`."""
    match = re.match(r"^\S+\s+\|\s+(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z\s?(.*)$", line)
    if not match:
        return None, line
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + float(match.group(2) or 0), match.group(3)


def edit(path: Path, old: str, new: str) -> float:
    """Replace `old` (or what the last edit made of it) by `new`; the time of the write."""
    source = path.read_text()
    source = re.sub(re.escape(old) + r"(, edited=\d+)?", new, source, count=1)
    path.write_text(source)
    return time.time()


def until(answer, timeout: float = 60) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if answer():
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"the new code did not answer within {timeout} s")


def healthz_says(url: str, marker: str | None):
    """Whether /healthz answers with that marker (None: answers, unedited)."""
    def check() -> bool:
        try:
            edited = requests.get(f"{url}/healthz", timeout=1).json().get("edited")
            return (edited is None) if marker is None else str(edited) == marker
        except (requests.RequestException, ValueError):
            return False
    return check


# ---------------------------------------------------------------- compose watch


class ComposeWatch:
    """`docker compose up --watch` in a copy of the tree, as a developer types it; removed afterwards."""

    def __init__(self, workdir: Path):
        self.tree = copy_tree(workdir / "mp3converter")
        self.env = read_env(write_stack_env(self.tree / ".env"))
        self.prefix = [*compose_sees_only(self.env), f"COMPOSE_PROJECT_NAME=mp3converter-bench-{os.getpid()}",
                       *shlex.split(compose_command())]
        self.url = f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    def __enter__(self):
        ensure_sync_user(ROOT)
        self.process = subprocess.Popen([*self.prefix, "up", "--watch"], cwd=self.tree, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self.output = StampedLines(self.process)
        try:
            wait_ready(self.url, timeout=1200)
        except BaseException:
            self.__exit__()
            raise
        time.sleep(3)  # the watcher starts once the services run
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.compose("down --volumes --remove-orphans --timeout 30")

    def logged(self, service: str, pattern: str, after: float, timeout: float = 120) -> float:
        """When the service's container logged the first line matching `pattern` after `after`, by the
        engine's own timestamps (a restarted container's lines included)."""
        regex = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.compose(f"logs --no-color --timestamps {service}").splitlines():
                stamp, text = _timestamped(line)
                if stamp is not None and stamp >= after and regex.search(text):
                    return stamp
            time.sleep(0.5)
        raise TimeoutError(f"{service} logged no line matching {pattern!r} within {timeout} s")

    def compose(self, subcommand: str) -> str:
        return subprocess.run([*self.prefix, *shlex.split(subcommand)], cwd=self.tree, capture_output=True,
                              text=True, timeout=600, check=True).stdout

    def http(self, service: str, repetitions: int) -> list[dict]:
        source = {"gateway": "services/gateway/gateway/api/health.py", "auth": "services/auth/auth/app.py"}[service]
        runs = []
        for index in range(1, repetitions + 1):
            marker = str(index)
            poller = None if service == "gateway" else self._poll_inside(service, marker)
            saved = edit(self.tree / source, 'jsonify(status="ok"', f'jsonify(status="ok", edited={marker}')
            if poller is None:
                live = until(healthz_says(self.url, marker))
            else:
                live = float(poller.communicate(timeout=120)[0].strip().splitlines()[-1])
            synced = self.output.first(rf'Syncing service "{service}"', saved)
            reloading = self.logged(service, r"Worker reloading", saved)
            booted = self.logged(service, r"Booting worker", reloading)
            runs.append({"whole": live - saved, "sync": synced - saved, "reload": booted - synced,
                         "start": live - booted})
            time.sleep(1)
        return runs

    def _poll_inside(self, service: str, marker: str) -> subprocess.Popen:
        """A poller inside the container (auth publishes no port): prints the time it first sees the marker."""
        script = ("import json, time, urllib.request\n"
                  "while True:\n"
                  "    try:\n"
                  "        body = json.load(urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=1))\n"
                  f"        if str(body.get('edited')) == '{marker}':\n"
                  "            print(time.time(), flush=True); break\n"
                  "    except Exception:\n"
                  "        pass\n"
                  "    time.sleep(0.02)\n")
        poller = subprocess.Popen([*self.prefix, "exec", "-T", service, "python", "-c", script], cwd=self.tree,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.5)  # until the poller runs
        return poller

    def consumer(self, repetitions: int, workdir: Path) -> list[dict]:
        """The converter, edited while it converts: it hands the message back, restarts, and its new code
        takes that message next."""
        session = requests.Session()
        token = session.post(f"{self.url}/login", auth=(self.env["ADMIN_EMAIL"], self.env["ADMIN_PASSWORD"]),
                             timeout=30).text
        session.headers["Authorization"] = f"Bearer {token}"
        long_video = make_video(workdir / "long.mp4", 3600, size="64x48", rate=1)
        handler = self.tree / "services/converter/converter/handler.py"
        runs = []
        for index in range(1, repetitions + 1):
            with long_video.open("rb") as video:
                upload = session.post(f"{self.url}/upload", files={"file": ("long.mp4", video)}, timeout=120)
            job_id = upload.json()["job_id"]
            until(lambda job=job_id: session.get(f"{self.url}/jobs/{job}", timeout=10).json()["status"] == "converting",
                  120)
            source = handler.read_text()
            handler.write_text(re.sub(r'log\.info\("converting[^"]*"', f'log.info("converting, edited {index}"',
                                      source, count=1))
            saved = time.time()
            live = self.logged("converter", rf'"converting, edited {index}".*{job_id}', saved, 180)
            synced = self.output.first(r'Syncing service "converter"', saved)
            handed_back = self.logged("converter", r'"message handed back"', saved)
            consuming = self.logged("converter", r'"consuming"', handed_back)
            runs.append({"whole": live - saved, "sync": synced - saved, "hand back": handed_back - synced,
                         "restart": consuming - handed_back, "next message": live - consuming})
            session.delete(f"{self.url}/jobs/{job_id}", timeout=30)
            time.sleep(2)
        return runs


# ---------------------------------------------------------------- run-local --reload


class RunLocal:
    """scripts/run-local on a copy of the tree (first on PYTHONPATH) with a throwaway database and queues."""

    def __init__(self, workdir: Path):
        from runlocal.throwaway import server_env, throwaway_env

        self.tree = copy_tree(workdir / "run-local")
        self.env = throwaway_env(server_env(), f"e2l{os.getpid()}", str(workdir / "heartbeat"),
                                 GATEWAY_PORT=str(free_port()), AUTH_PORT=str(free_port()),
                                 METRICS_PORT=str(free_port()))
        self.env_file = workdir / "run-local.env"
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in self.env.items()))
        self.url = f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    def start(self, *args: str) -> subprocess.Popen:
        folders = [self.tree / "services" / part for part in ("common", "auth", "gateway", "converter", "notification")]
        python_path = os.pathsep.join(str(folder) for folder in [*folders, self.tree / "tools"])
        return subprocess.Popen([sys.executable, "-m", "runlocal", *args, "--env-file", str(self.env_file)],
                                env={**os.environ, "PYTHONPATH": python_path}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=self.tree)

    def cold_starts(self, repetitions: int) -> list[float]:
        """The baseline: run-local started in a fresh interpreter, until it answers."""
        times = []
        for _ in range(repetitions):
            began = time.time()
            process = self.start()
            try:
                times.append(until(healthz_says(self.url, None), 180) - began)
            finally:
                process.terminate()
                process.wait(timeout=60)
        return times


def run_local_reload(run_local: RunLocal, repetitions: int) -> list[dict]:
    process = run_local.start("--reload")
    try:
        return reload_runs(process, run_local.tree / GATEWAY_HEALTH, run_local.url, repetitions)
    finally:
        process.terminate()
        process.wait(timeout=60)


def reload_runs(process: subprocess.Popen, source: Path, url: str, repetitions: int) -> list[dict]:
    """run-local --reload, started as `process` (its output piped): the gateway's `source` edited, split by
    what run-local prints."""
    output = StampedLines(process)
    output.first(r"^Ready\. Gateway", 0, 180)
    runs = []
    for index in range(1, repetitions + 1):
        marker = str(index)
        saved = edit(source, 'jsonify(status="ok"', f'jsonify(status="ok", edited={marker}')
        live = until(healthz_says(url, marker))
        noticed = output.first(r"^Changed: ", saved)
        stopped = last_before(output, r'"consumer stopped"', noticed, live)
        runs.append({"whole": live - saved, "notice": noticed - saved, "stop": stopped - noticed,
                     "start": live - stopped})
        time.sleep(1)
    return runs


# ---------------------------------------------------------------- the devcontainer


class InDevcontainer:
    """The devcontainer up on a copy of the tree, as VS Code's "Reopen in Container" makes it for the user
    running this; removed afterwards. Root gets the devcontainer suite's non-root host user instead (the
    container's user could edit none of root's files, nor read its .env)."""

    def __init__(self, workdir: Path):
        install_cli()
        project = f"mp3converter-bench-dev-{os.getpid()}"
        if os.geteuid() == 0:
            user = host_user()
            self.base = Path(pwd.getpwnam(user).pw_dir) / f"edit-to-live-{os.getpid()}"
            self.container = owned_by(user, self.base, project)
        else:
            self.base = workdir / "devcontainer"
            tree = copy_tree(self.base / "mp3converter", repository=True)
            self.container = Devcontainer(CLI, shlex.split(compose_command()), tree, project)

    def __enter__(self):
        try:
            self.container.up()
        except BaseException:
            self.container.down()
            raise
        return self

    def __exit__(self, *exc):
        self.container.down()
        shutil.rmtree(self.base, ignore_errors=True)

    def reload(self, repetitions: int) -> list[dict]:
        """This module's --inside-devcontainer, run in the container: its runs."""
        result = self.container.exec("bash", "-c", "cd /workspaces/mp3converter && PYTHONPATH=tools "
                                     f"$MP3CONVERTER_VENV/bin/python -m bench.edit_to_live --inside-devcontainer "
                                     f"{repetitions}", timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"inside the devcontainer: {(result.stdout + result.stderr)[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def inside_devcontainer(repetitions: int) -> None:
    """scripts/run-local --reload in this checkout, the gateway's file edited here; the runs as JSON."""
    process = subprocess.Popen(["scripts/run-local", "--reload"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        runs = reload_runs(process, ROOT / GATEWAY_HEALTH, f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}",
                           repetitions)
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(json.dumps(runs))


def devcontainer_reload(workdir: Path, repetitions: int) -> list[dict]:
    with InDevcontainer(workdir) as devcontainer:
        return devcontainer.reload(repetitions)


def last_before(output: StampedLines, pattern: str, after: float, before: float) -> float:
    """When the last line matching `pattern` between the two times arrived (`after` when there is none)."""
    regex = re.compile(pattern)
    return max([stamp for stamp, line in output.lines if after <= stamp <= before and regex.search(line)],
               default=after)


# ---------------------------------------------------------------- import time


def import_seconds(module: str, repetitions: int) -> float:
    """Wall time of a fresh interpreter importing the module, less that of one importing nothing."""
    def timed(code: str) -> float:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - began
    return median([timed(f"import {module}") - timed("pass") for _ in range(repetitions)])


# ---------------------------------------------------------------- rows


def rows_for(case: str, runs: list[dict], target: float) -> list[Row]:
    whole = median([r["whole"] for r in runs])
    parts = "  ".join(f"{name} {median([r[name] for r in runs]):.2f} s" for name in runs[0] if name != "whole")
    return [
        Row(section="edit-to-live", case=case, comparison=f"save -> new code answers (median of {len(runs)})",
            value=f"{whole:.2f} s", baseline=f"target {target:.0f} s", result=f"{whole / target:.2f}x",
            target=f"<= {target:.0f} s", verdict=verdict(whole <= target), numbers={"runs": runs}),
        Row(section="edit-to-live", case=case, comparison="where the time goes", value=parts),
    ]


def measured(rows: list[Row], data: dict, key: str, case: str, target: float, measure) -> None:
    """Run one case; its rows, or an ERROR row saying why, so that the other cases' figures stay."""
    try:
        data[key] = measure()
    except Exception as error:  # reported in the table, as the other benchmarks report theirs
        data[key] = {"error": repr(error)}
        rows.append(Row(section="edit-to-live", case=case, comparison="failed", value=repr(error)[:200],
                        verdict="ERROR"))
        return
    rows.extend(rows_for(case, data[key], target))


def run(quick: bool) -> tuple[list[Row], dict]:
    repetitions = 2 if quick else 3
    rows: list[Row] = []
    data: dict = {}
    with tempfile.TemporaryDirectory(prefix="edit-to-live-") as temporary:
        workdir = Path(temporary)
        run_local = RunLocal(workdir)
        try:
            data["run-local cold start"] = run_local.cold_starts(repetitions)
            measured(rows, data, "run-local", "gateway (run-local --reload)", HTTP_TARGET,
                     lambda: run_local_reload(run_local, repetitions))
        finally:
            from runlocal.throwaway import drop

            drop(run_local.env)
        if "error" not in data["run-local"]:
            cold = median(data["run-local cold start"])
            reload = median([r["whole"] for r in data["run-local"]])
            rows.append(Row(section="edit-to-live", case="gateway (run-local --reload)",
                            comparison="against run-local started afresh", value=f"{reload:.2f} s",
                            baseline=f"{cold:.2f} s", result=f"{reload / cold:.2f}x"))
        problem = engine_problem() or compose_problem()
        if problem:
            rows.append(Row(section="edit-to-live", case="compose watch", comparison="skipped", value=problem,
                            verdict="SKIP"))
        else:
            with ComposeWatch(workdir) as stack:
                for service in ("gateway", "auth"):
                    measured(rows, data, service, f"{service} (compose watch)", HTTP_TARGET,
                             lambda name=service: stack.http(name, repetitions))
                measured(rows, data, "converter", "converter, a message in flight (compose watch)", CONSUMER_TARGET,
                         lambda: stack.consumer(repetitions, workdir))
            measured(rows, data, "devcontainer", "gateway (devcontainer, run-local --reload)", HTTP_TARGET,
                     lambda: devcontainer_reload(workdir, repetitions))
    data["imports"] = {name: import_seconds(module, repetitions + 2) for name, module in IMPORTS.items()}
    rows.append(Row(section="edit-to-live", case="import time", comparison="a fresh interpreter imports",
                    value="  ".join(f"{name} {seconds:.2f} s" for name, seconds in data["imports"].items())))
    return rows, data


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="One part of scripts/bench's edit-to-live, run where it is measured.")
    parser.add_argument("--inside-devcontainer", type=int, metavar="REPETITIONS", required=True,
                        help="run-local --reload in this checkout, inside the devcontainer")
    inside_devcontainer(parser.parse_args().inside_devcontainer)
