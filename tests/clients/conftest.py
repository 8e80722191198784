"""The clients people use, against scripts/run-local as a user starts it: mp3c in a real terminal
and through pipes, and the web page in headless Chromium."""

import collections
import threading
from pathlib import Path

import pytest

from devstack.media import make_video
from tests.servers import ADMIN, stack_environment

pytestmark = pytest.mark.integration
MAX_UPLOAD_MB = 48  # above the slow video (40 MB), which Ctrl-C interrupts while converting


@pytest.fixture(scope="session")
def local_stack(servers, tmp_path_factory):
    """run-local, ready, its log drained (and its last lines kept for a failing test's report)."""
    from tests.servers import ready_run_local

    env = stack_environment(servers, tmp_path_factory, "cl", MAX_UPLOAD_MB=str(MAX_UPLOAD_MB))
    with ready_run_local(env) as (process, admin):
        tail = collections.deque(maxlen=200)
        threading.Thread(target=lambda: tail.extend(process.stdout), daemon=True).start()
        admin.log_tail = tail
        yield admin


@pytest.fixture(scope="session")
def gateway_url(local_stack) -> str:
    return local_stack.base


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    return ADMIN


@pytest.fixture(scope="session")
def slow_video(tmp_path_factory) -> Path:
    """40 minutes of sound behind a tiny picture: several seconds to convert, quick to make."""
    return make_video(tmp_path_factory.mktemp("slow") / "slow.mkv", 2400, size="64x48", rate=1, audio_codec="flac")
