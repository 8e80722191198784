"""mp3c as a person uses it, against run-local: in a real terminal for the prompts and the bars, and
through pipes for the plain output that scripts and CI read."""

import os
import stat
import subprocess

import pytest

from sample_media import audio_seconds, box_claiming_two_to_the_64
from tests.clients.conftest import MAX_UPLOAD_MB
from tests.clients.terminal import run_in_terminal
from tests.servers import ROOT, free_port

MP3C = str(ROOT / "scripts/mp3c")


@pytest.fixture
def home(tmp_path):
    """A user of their own: a config dir nobody else's mp3c wrote to."""
    return tmp_path / "config"


def environ(gateway_url, home, **extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MP3C_")}
    return {**env, "XDG_CONFIG_HOME": str(home), "MP3C_URL": gateway_url, "COLUMNS": "120", **extra}


def mp3c(gateway_url, home, *args, stdin="", **extra):
    """mp3c through pipes: not a terminal, so plain lines."""
    return subprocess.run([MP3C, *args], input=stdin, capture_output=True, text=True, timeout=300,
                          env=environ(gateway_url, home, **extra))


@pytest.fixture
def logged_in(gateway_url, home, admin_credentials):
    email, password = admin_credentials
    result = mp3c(gateway_url, home, "login", "--email", email, stdin=f"{password}\n")
    assert result.returncode == 0, result.stderr
    return home


def test_login_in_a_terminal_asks_and_keeps_the_token_for_the_user_alone(gateway_url, home, admin_credentials):
    email, password = admin_credentials
    screen = run_in_terminal([MP3C, "login"], environ(gateway_url, home),
                             answers=[("Email:", email), ("Password:", password)])
    assert screen.exit_code == 0, screen.text
    assert f"Logged in as {email}" in screen.text
    assert password not in screen.text  # not echoed
    token_file = home / "mp3c" / "tokens.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    jobs = mp3c(gateway_url, home, "jobs")
    assert jobs.returncode == 0, jobs.stderr
    assert jobs.stdout.splitlines()[0].split("\t")[:3] == ["JOB", "FILE", "STATUS"]


def test_a_wrong_password_says_so(gateway_url, home, admin_credentials):
    result = mp3c(gateway_url, home, "login", "--email", admin_credentials[0], stdin="not-the-password\n")
    assert result.returncode == 1
    assert result.stderr.strip() == "mp3c: Wrong e-mail or password."
    assert not (home / "mp3c" / "tokens.json").exists()


def test_convert_an_mkv_and_a_mov_in_one_command_through_pipes(gateway_url, logged_in, samples, tmp_path):
    out = tmp_path / "mp3s"
    # Both are named after their video; the second of two same names in one run gets a number.
    mp3s = {"video.mkv": "video.mp3", "video.mov": "video (2).mp3"}
    result = mp3c(gateway_url, logged_in, "convert", str(samples["video.mkv"]), str(samples["video.mov"]),
                  "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("video.mkv", "video.mov"):
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{name}: ")]
        assert lines[:2] == [f"{name}: uploading", f"{name}: queued"], result.stdout
        assert lines[-2:] == [f"{name}: done", f"{name}: saved {out / mp3s[name]}"], result.stdout
        assert len(lines) == len(set(lines)), "one line per change of state, no repeats"
        assert "\x1b[" not in result.stdout, "no terminal control sequences in a pipe"
        assert audio_seconds(out / mp3s[name]) == pytest.approx(audio_seconds(samples[name]), abs=0.15)


def test_convert_in_a_terminal_shows_bars_and_saves_each_mp3_next_to_its_video(gateway_url, logged_in, samples,
                                                                               tmp_path):
    videos = []
    for name in ("video.mkv", "video.mov"):
        folder = tmp_path / name.replace(".", "-")
        folder.mkdir()
        videos.append(folder / name)
        videos[-1].write_bytes(samples[name].read_bytes())
    screen = run_in_terminal([MP3C, "convert", *map(str, videos)], environ(gateway_url, logged_in))
    assert screen.exit_code == 0, screen.text
    assert "━" in screen.text and "100%" in screen.text, "progress bars"
    assert "uploading" in screen.text and "saved" in screen.text
    for video in videos:
        mp3 = video.with_suffix(".mp3")
        assert audio_seconds(mp3) == pytest.approx(audio_seconds(video), abs=0.15)


def test_a_text_file_and_a_truncated_video_each_give_their_reason_and_exit_1(gateway_url, logged_in, samples,
                                                                              tmp_path):
    result = mp3c(gateway_url, logged_in, "convert", str(samples["text.mp4"]), str(samples["truncated.mp4"]),
                  "-o", str(tmp_path))
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert "text.mp4: failed: Upload a video file (mp4, mkv, mov, webm, avi, ...)." in errors
    assert any(line.startswith("truncated.mp4: failed: The file is truncated") for line in errors), errors
    assert list(tmp_path.glob("*.mp3")) == []


def test_a_file_over_the_limit_gives_the_servers_message(gateway_url, logged_in, samples, tmp_path):
    big = tmp_path / "big.mkv"
    big.write_bytes(samples["video.mkv"].read_bytes() + b"\0" * (MAX_UPLOAD_MB * 1024 * 1024))
    result = mp3c(gateway_url, logged_in, "convert", str(big))
    assert result.returncode == 1
    assert f"big.mkv: failed: The file is larger than {MAX_UPLOAD_MB} MiB." in result.stderr


def test_no_wait_then_jobs_then_download(gateway_url, logged_in, samples, tmp_path):
    result = mp3c(gateway_url, logged_in, "convert", "--no-wait", str(samples["faststart.mp4"]))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip().splitlines()[-1].rsplit(" ", 1)[1]
    assert result.stdout.strip().endswith(f"faststart.mp4: queued as job {job_id}")

    early = mp3c(gateway_url, logged_in, "download", job_id, "-o", str(tmp_path))
    if early.returncode == 1:  # not finished yet: it says so
        assert "nothing to download yet" in early.stderr
    for _ in range(100):
        listed = mp3c(gateway_url, logged_in, "jobs").stdout
        row = next(line.split("\t") for line in listed.splitlines() if line.startswith(job_id))
        if row[2] == "done":
            break
    assert row[1:4] == ["faststart.mp4", "done", "100%"]
    fetched = mp3c(gateway_url, logged_in, "download", job_id, "-o", str(tmp_path))
    assert fetched.returncode == 0, fetched.stderr
    assert audio_seconds(tmp_path / "faststart.mp3") == pytest.approx(audio_seconds(samples["faststart.mp4"]),
                                                                     abs=0.15)


def test_ctrl_c_stops_and_says_which_jobs_still_run_on_the_server(gateway_url, logged_in, slow_video):
    screen = run_in_terminal([MP3C, "convert", str(slow_video)], environ(gateway_url, logged_in),
                             ctrl_c_when="converting")
    assert screen.exit_code == 130, screen.text
    assert "Stopped." in screen.text
    assert "slow.mkv: still converting on the server as job" in screen.text
    job_id = screen.text.split("as job ", 1)[1].split()[0]
    job = mp3c(gateway_url, logged_in, "jobs").stdout
    assert job_id in job


def test_without_a_login_it_says_run_mp3c_login(gateway_url, home, samples):
    result = mp3c(gateway_url, home, "convert", str(samples["video.mkv"]))
    assert (result.returncode, result.stderr) == (3, "mp3c: Not logged in, or the login expired: run mp3c login.\n")
    forged = mp3c(gateway_url, home, "jobs", MP3C_TOKEN="forged")
    assert (forged.returncode, forged.stderr) == (3, "mp3c: Not logged in, or the login expired: run mp3c login.\n")


def test_a_gateway_that_is_down_is_one_line_and_exit_2(home, samples):
    result = mp3c(f"http://127.0.0.1:{free_port()}", home, "convert", str(samples["video.mkv"]), MP3C_TOKEN="x")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "is not reachable" in result.stderr


def test_logout_forgets_the_token(gateway_url, logged_in):
    assert mp3c(gateway_url, logged_in, "logout").stdout == "Logged out.\n"
    assert mp3c(gateway_url, logged_in, "jobs").returncode == 3


@pytest.mark.parametrize("command", [[], ["login"], ["logout"], ["convert"], ["jobs"], ["download"]])
def test_help_everywhere(home, command):
    result = mp3c("http://127.0.0.1:1", home, *command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: mp3c {' '.join(command)}".rstrip())


def test_a_crafted_mp4_ends_failed_with_a_reason_instead_of_waiting_for_ever(gateway_url, logged_in, tmp_path):
    """A box claiming a size near 2**64 once made the converter raise at every try: the message went to
    the dead-letter queue and the job stayed converting, so mp3c waited without end."""
    crafted = tmp_path / "crafted.mp4"
    box_claiming_two_to_the_64(crafted)

    result = subprocess.run([MP3C, "convert", str(crafted), "-o", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120, env=environ(gateway_url, logged_in))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed" in (result.stdout + result.stderr).lower()
    listed = mp3c(gateway_url, logged_in, "jobs")
    row = next(line.split("\t") for line in listed.stdout.splitlines() if "crafted.mp4" in line)
    assert row[2] == "failed"
