"""schemathesis against the live stack that scripts/run-local starts: every phase (the stateful one
follows openapi.yaml's links from upload to job to download and delete), every check, authenticated,
a bounded number of examples. Zero server errors, zero answers the spec does not allow, zero timeouts."""

import collections
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sample_media import make_video
from tests.servers import ADMIN, ready_run_local, stack_environment

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("contract-videos")
    return [make_video(folder / "clip.mp4", 1, size="64x48", rate=5),
            make_video(folder / "clip.mkv", 1, size="64x48", rate=5, audio_codec="libmp3lame")]


def drain(process: subprocess.Popen) -> collections.deque:
    """Read the stack's log as it comes (a full pipe would stall it); keep the end for a failure report."""
    tail = collections.deque(maxlen=200)
    threading.Thread(target=lambda: tail.extend(process.stdout), daemon=True).start()
    return tail


def test_schemathesis_finds_nothing_on_the_live_stack(servers, tmp_path_factory, tmp_path, videos):
    env = stack_environment(servers, tmp_path_factory, "contract", MAX_UPLOAD_MB="2")
    with ready_run_local(env) as (process, client):
        stack_log = drain(process)
        result = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
             "run", f"{client.base}/openapi.json"],
            env={**os.environ, "EMAIL": ADMIN[0], "PASSWORD": ADMIN[1], "TOKEN": client.token,
                 "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
                 "CONTRACT_VIDEOS": os.pathsep.join(map(str, videos)), "PYTHONPATH": str(ROOT)},
            cwd=tmp_path, capture_output=True, text=True, timeout=540,  # its cache stays out of the repository
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report + "\nThe stack's log ends with:\n" + "".join(stack_log)
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅\s+{phase}", report), f"the {phase} phase did not pass:\n{report}"
    links = re.search(r"API Links:\s+(\d+) covered", report)
    assert links and int(links.group(1)) >= 4, f"the stateful phase followed too few links:\n{report}"
    assert re.search(r"(\d+) generated, \1 passed", report), report
