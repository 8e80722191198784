"""The web page at / in headless Chromium, as a person uses it: found by the labels and names a
screen reader would announce, driven by mouse and keyboard, against run-local."""

import re

import pytest
from playwright.sync_api import expect

from gateway.api.page import CONTENT_SECURITY_POLICY
from sample_media import audio_seconds
from tests.clients.conftest import MAX_UPLOAD_MB


def log_in(page, email, password):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def logged_in(page, admin_credentials):
    log_in(page, *admin_credentials)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def row_of(page, filename):
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=filename, exact=True)).first


def test_log_in_upload_a_video_watch_it_convert_and_download_the_mp3(logged_in, ten_minutes, tmp_path):
    page = logged_in
    page.get_by_label("Video", exact=True).set_input_files(ten_minutes)
    row = row_of(page, "ten minutes.mkv")
    seen = []
    for _ in range(1200):
        state = (row.locator("td.status").inner_text(), row.get_by_role("progressbar").evaluate("bar => bar.value"))
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[0] in ("done", "failed"):
            break
        page.wait_for_timeout(50)
    assert seen[-1] == ("done", 100), seen
    converting = [value for status, value in seen if status == "converting"]
    assert len(set(converting)) >= 2 and any(0 < value < 100 for value in converting), \
        f"the conversion's progress did not move on the page: {seen}"
    assert row.get_by_role("progressbar", name="Progress of ten minutes.mkv").is_visible()

    with page.expect_download(timeout=60_000) as downloading:
        row.get_by_role("link", name="Download").click()
    download = downloading.value
    assert download.suggested_filename == "ten minutes.mp3"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert audio_seconds(saved) == pytest.approx(audio_seconds(ten_minutes), abs=0.15)
    assert page.console_errors == []


def test_a_wrong_password_says_so(page, admin_credentials):
    log_in(page, admin_credentials[0], "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()


def test_a_text_file_says_it_is_not_a_video(page, admin_credentials, samples):
    # The list of jobs answers only after the refusal, as on a slow network: the row must stay.
    held = []
    page.route("**/jobs", lambda route: held.append(route))
    log_in(page, *admin_credentials)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.get_by_label("Video", exact=True).set_input_files(samples["text.mp4"])
    reason = "Upload a video file (mp4, mkv, mov, webm, avi, ...)."
    expect(page.get_by_role("alert")).to_have_text(f"text.mp4: {reason}")
    page.wait_for_timeout(100)
    held[0].continue_()
    page.unroute("**/jobs")
    row = row_of(page, "text.mp4")
    expect(row.locator("td.status")).to_have_text("refused")
    expect(row.locator("td.reason")).to_have_text(reason)


def test_a_file_too_large_says_so(logged_in, samples, tmp_path):
    big = tmp_path / "big.mkv"
    big.write_bytes(samples["video.mkv"].read_bytes() + b"\0" * (MAX_UPLOAD_MB * 1024 * 1024))
    logged_in.get_by_label("Video", exact=True).set_input_files(big)
    expect(logged_in.get_by_role("alert")).to_have_text(f"big.mkv: The file is larger than {MAX_UPLOAD_MB} MiB.",
                                                        timeout=30_000)


def test_a_server_that_is_down_says_so(page, admin_credentials):
    page.route("**/login", lambda route: route.abort("connectionrefused"))
    log_in(page, *admin_credentials)
    expect(page.get_by_role("alert")).to_have_text(re.compile("The server is not reachable"))


def test_several_videos_at_once_each_with_its_row_and_download_link(logged_in, samples):
    logged_in.get_by_label("Video", exact=True).set_input_files([samples["video.mkv"], samples["video.mov"]])
    for name in ("video.mkv", "video.mov"):
        row = row_of(logged_in, name)
        expect(row.locator("td.status")).to_have_text("done", timeout=60_000)
        expect(row.get_by_role("link", name="Download")).to_be_visible()


def test_keyboard_only(page, admin_credentials):
    email, password = admin_credentials
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    # Logged in, the next thing to do has the focus: choosing videos; "Log out" is one step back.
    expect(page.get_by_label("Video", exact=True)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Log out")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_the_token_stays_in_the_tab_and_the_page_is_locked_down(logged_in, gateway_url):
    assert logged_in.context.cookies() == []
    assert logged_in.evaluate("sessionStorage.getItem('mp3converter.token')").count(".") == 2
    logged_in.reload()  # the same tab keeps its login
    expect(logged_in.get_by_role("button", name="Log out")).to_be_visible()
    response = logged_in.request.get(gateway_url + "/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    html = response.text()
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere: works offline
    assert logged_in.console_errors == []
