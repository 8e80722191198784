"""Fixtures every suite may use: generated media, a fresh in-memory MongoDB, stand-ins for the broker
and for auth."""

import threading
from pathlib import Path

import pytest

from common.broker import PublishError
from runlocal import mongo
from sample_media import cached_sample_set, default_cache

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# Each folder of tests/ is a suite, and its tests carry the marker of that name (declared in
# pyproject.toml): a folder and `-m` select the same tests. scripts/test runs the first two by default.
SUITES = ("unit", "harness", "wheels", "integration", "faults", "contract", "clients", "standins", "compose",
          "watch", "devcontainer", "pods")

pytest_plugins = ["tests.servers", "tests.containers"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Before `-m` selects: each test gets the marker of its folder, and no other suite's."""
    for item in items:
        suite = item.path.relative_to(TESTS).parts[0]
        if suite not in SUITES:
            raise pytest.UsageError(f"{item.nodeid}: tests/{suite} is not a suite; add it to SUITES")
        foreign = {mark.name for mark in item.iter_markers() if mark.name in SUITES} - {suite}
        if foreign:
            raise pytest.UsageError(f"{item.nodeid} is marked {sorted(foreign)}: its folder is its suite")
        item.add_marker(suite)


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    """faststart.mp4, plain.mp4 (moov at the end), video.mkv, video.mov, video.webm, silent.mp4 (no audio),
    truncated.mp4, text.mp4 (text named .mp4) and empty.mp4; 4 s each where they are videos. Read-only,
    made once per ffmpeg version and kept between runs (sample_media.cached_sample_set)."""
    return cached_sample_set(default_cache())


@pytest.fixture
def memory_db():
    """A fresh in-memory MongoDB database, as MONGODB_URI=memory gives the services."""
    return mongo.fresh_database()


class FakePublisher:
    """The gateway's Publisher without a broker: records what is published; can be made to fail."""

    def __init__(self):
        self.published: list[tuple[str, dict]] = []
        self.priorities: list[int | None] = []
        self.fail = False
        self.consumers: dict[str, int] = {}
        self.depths: dict[str, int] = {}
        self.lock = threading.Lock()

    def publish(self, queue: str, message: dict, priority: int | None = None) -> None:
        if self.fail:
            raise PublishError("broker down (test)")
        with self.lock:
            self.published.append((queue, message))
            self.priorities.append(priority)

    def consumer_count(self, queue: str) -> int:
        return self.consumers.get(queue, 0)

    def queue_counts(self, queue: str) -> tuple[int, int]:
        if self.fail:
            raise ConnectionError("broker down (test)")
        return self.depths.get(queue, 0), self.consumers.get(queue, 0)

    def ping(self) -> None:
        if self.fail:
            raise ConnectionError("broker down (test)")


@pytest.fixture
def fake_publisher():
    return FakePublisher()
