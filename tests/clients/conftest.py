"""The clients people use, against scripts/run-local as a user starts it: mp3c in a real terminal
and through pipes, and the web page in headless Chromium."""

import collections
import os
import threading
from pathlib import Path

import pytest

from sample_media import make_video
from tests.servers import ADMIN, ready_run_local, stack_environment

MAX_UPLOAD_MB = 48  # above the slow video (40 MB), which Ctrl-C interrupts while converting


@pytest.fixture(scope="session")
def local_stack(servers, tmp_path_factory):
    """run-local, ready; its log is read and dropped, so that it never blocks on a full pipe."""
    env = stack_environment(servers, tmp_path_factory, "cl", MAX_UPLOAD_MB=str(MAX_UPLOAD_MB))
    with ready_run_local(env) as (process, admin):
        threading.Thread(target=collections.deque, args=(process.stdout, 0), daemon=True).start()
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


@pytest.fixture(scope="session")
def ten_minutes(tmp_path_factory) -> Path:
    """Ten minutes of sound behind a tiny picture: its conversion takes a few progress reports."""
    return make_video(tmp_path_factory.mktemp("ten") / "ten minutes.mkv", 600, size="64x48", rate=1,
                      audio_codec="flac")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screenshots"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (which downloads no browser of its own)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Chromium for the page's tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, gateway_url, request):
    """A fresh tab on the page; a screenshot is saved when the test fails, and console errors (a
    Content-Security-Policy violation among them) fail the test."""
    context = browser.new_context(accept_downloads=True, base_url=gateway_url)
    tab = context.new_page()
    tab.console_errors, tab.failed_responses = [], []
    tab.on("console", lambda message: message.type == "error" and tab.console_errors.append(message.text))
    tab.on("response", lambda r: r.status >= 400 and tab.failed_responses.append(f"{r.status} {r.url}"))
    tab.goto("/")
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed step: {shot}; console errors: {tab.console_errors}; "
              f"error answers: {tab.failed_responses}")
    context.close()
