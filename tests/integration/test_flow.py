"""The whole flow over HTTP, through run-local's wiring, against real MySQL and RabbitMQ."""

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from common.jobs import Jobs
from common.storage import object_id
from runlocal.mongo import connect
from sample_media import audio_seconds
from tests.servers import ADMIN, ROOT, Client, queue_depth


def create_user(env, email, password, *extra):
    return subprocess.run([str(ROOT / "scripts/create-user"), email, *extra], input=f"{password}\n",
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def bob(stack, stack_env) -> Client:
    result = create_user(stack_env, "bob@example.com", "bob-password-1")
    assert result.returncode == 0, result.stderr
    client = Client(stack.gateway_url)
    assert client.login("bob@example.com", "bob-password-1").status_code == 200
    return client


@pytest.mark.parametrize("name", ["faststart.mp4", "plain.mp4", "video.mkv", "video.mov"])
def test_upload_convert_download(admin, samples, tmp_path, name):
    upload = admin.upload(samples[name])
    assert upload.status_code == 202, upload.text
    assert upload.json()["status"] == "queued"

    job = admin.wait_final(upload.json()["job_id"])
    assert (job["status"], job["progress"], job["error"]) == ("done", 100, None)
    assert job["filename"] == name

    download = admin.download(job["mp3_fid"])
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "audio/mpeg"
    assert download.headers["Content-Disposition"] == f"attachment; filename={samples[name].stem}.mp3"
    mp3 = tmp_path / "song.mp3"
    mp3.write_bytes(download.content)
    assert audio_seconds(mp3) == pytest.approx(audio_seconds(samples[name]), abs=0.15)


@pytest.mark.parametrize(("name", "reason"), [("silent.mp4", "no audio track"), ("truncated.mp4", "truncated")])
def test_videos_that_cannot_convert_fail_with_a_reason_and_are_dead_lettered(stack_env, admin, samples, name, reason):
    dead_before = queue_depth(stack_env, f"{stack_env['VIDEO_QUEUE']}.dead")
    upload = admin.upload(samples[name])
    assert upload.status_code == 202

    job = admin.wait_final(upload.json()["job_id"])

    assert job["status"] == "failed"
    assert reason in job["error"]
    assert job["mp3_fid"] is None
    assert queue_depth(stack_env, f"{stack_env['VIDEO_QUEUE']}.dead") == dead_before + 1


@pytest.mark.parametrize(("name", "status", "error"), [
    ("text.mp4", 415, "not_a_video"),
    ("empty.mp4", 400, "empty_file"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(admin, samples, name, status, error):
    before = len(admin.all_jobs())
    response = admin.upload(samples[name])
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert len(admin.all_jobs()) == before


def test_an_upload_over_the_limit_is_413(admin, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (9 * 1024 * 1024))  # MAX_UPLOAD_MB=8 in this run
    response = admin.upload(big)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_two_files_or_no_file_is_400(admin, stack, samples):
    with samples["faststart.mp4"].open("rb") as one, samples["video.mkv"].open("rb") as two:
        two_files = admin.http.post(f"{stack.gateway_url}/upload", headers=admin.headers(),
                                    files=[("file", ("a.mp4", one)), ("file", ("b.mkv", two))])
    assert two_files.status_code == 400
    no_file = admin.http.post(f"{stack.gateway_url}/upload", headers=admin.headers(), data={"x": "1"})
    assert no_file.status_code == 400


def test_without_a_valid_token_everything_is_401(stack, samples):
    anonymous = Client(stack.gateway_url)
    forged = Client(stack.gateway_url, token="eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbkBleGFtcGxlLmNvbSJ9.")
    for client in (anonymous, forged):
        assert client.upload(samples["faststart.mp4"]).status_code == 401
        assert client.jobs().status_code == 401
        assert client.job("6b0a7a79263e08cfdd383f3c").status_code == 401
        assert client.download("6b0a7a79263e08cfdd383f3c").status_code == 401
    assert anonymous.login("admin@example.com", "wrong").status_code == 401


def test_users_see_and_download_only_their_own_jobs(admin, bob, samples):
    upload = admin.upload(samples["faststart.mp4"])
    job = admin.wait_final(upload.json()["job_id"])

    assert bob.job(job["job_id"]).status_code == 404
    assert bob.download(job["mp3_fid"]).status_code == 404
    assert job["job_id"] not in [j["job_id"] for j in bob.all_jobs()]
    assert admin.jobs().json()["jobs"][0]["job_id"] == job["job_id"]  # newest first


def test_malformed_ids_are_404_and_a_missing_fid_is_400(admin):
    for bad in ("nope", "0" * 24, "%00", "..%2F..%2Fetc"):
        assert admin.job(bad).status_code == 404
        assert admin.download(bad).status_code == 404
    assert admin.download(None).status_code == 400


def test_each_finished_job_is_notified_once(stack_env, admin, samples):
    upload = admin.upload(samples["faststart.mp4"])
    job = admin.wait_final(upload.json()["job_id"])
    jobs = Jobs(connect(stack_env["MONGODB_URI"], stack_env["MONGODB_DB"]))
    deadline = time.monotonic() + 10
    while jobs.get(job["job_id"])["notified_at"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jobs.get(job["job_id"])["notified_at"] is not None


def test_create_user_refuses_a_duplicate_and_reads_the_password_from_stdin(stack, stack_env):
    assert create_user(stack_env, "carol@example.com", "carol-password").returncode == 0
    again = create_user(stack_env, "carol@example.com", "another-password")
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert Client(stack.gateway_url).login("carol@example.com", "carol-password").status_code == 200
    short = create_user(stack_env, "dave@example.com", "short")
    assert short.returncode != 0 and "at least" in short.stderr


def test_brute_force_login_is_throttled_even_for_the_right_password(stack, stack_env):
    assert create_user(stack_env, "erin@example.com", "erin-password").returncode == 0
    client = Client(stack.gateway_url)
    statuses = [client.login("erin@example.com", f"guess-{n}").status_code for n in range(5)]
    locked = client.login("erin@example.com", "erin-password")
    assert statuses == [401] * 5
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert Client(stack.gateway_url).login(*ADMIN).status_code == 200  # other accounts are not locked


def test_readyz_reports_every_dependency(stack):
    ready = Client(stack.gateway_url).http.get(f"{stack.gateway_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == dict.fromkeys(
        ["auth", "mongodb", "rabbitmq", "converter", "notification"], "ok")



def storage_counts(stack_env) -> dict[str, int]:
    db = connect(stack_env["MONGODB_URI"], stack_env["MONGODB_DB"])
    return {name: db[name].count_documents({}) for name in ("jobs", "videos.files", "mp3s.files", "mp3s.chunks")}


def test_pages_of_jobs_walk_every_job_once(admin, samples):
    uploaded = [admin.upload(samples["faststart.mp4"]).json()["job_id"] for _ in range(5)]
    first = admin.jobs(limit=2).json()
    second = admin.jobs(limit=2, cursor=first["next_cursor"]).json()
    newest = [job["job_id"] for job in first["jobs"] + second["jobs"]]
    assert newest == uploaded[::-1][:4]
    assert admin.jobs(limit=0).status_code == 400
    assert admin.jobs(cursor="nope").json()["error"] == "bad_page"
    everything = [job["job_id"] for job in admin.all_jobs()]
    assert len(everything) == len(set(everything)) and everything[:5] == uploaded[::-1]


def test_a_deleted_job_is_gone_with_its_files(stack_env, admin, samples):
    job = admin.wait_final(admin.upload(samples["video.mkv"]).json()["job_id"])
    assert job["status"] == "done"
    before = storage_counts(stack_env)

    assert admin.delete(job["job_id"]).status_code == 204

    after = storage_counts(stack_env)
    assert (before["jobs"] - after["jobs"], before["mp3s.files"] - after["mp3s.files"]) == (1, 1)
    assert before["mp3s.chunks"] > after["mp3s.chunks"]
    assert admin.job(job["job_id"]).status_code == 404
    assert admin.download(job["mp3_fid"]).status_code == 404
    assert admin.delete(job["job_id"]).status_code == 404


def test_the_video_goes_once_converted_and_the_mp3_after_retention_days(stack_env, admin, samples):
    db = connect(stack_env["MONGODB_URI"], stack_env["MONGODB_DB"])
    job = admin.wait_final(admin.upload(samples["video.mov"]).json()["job_id"])
    video_fid = db["jobs"].find_one({"_id": object_id(job["job_id"])})["video_fid"]
    deadline = time.monotonic() + 5  # it goes once the MP3 is announced, a moment after the job is done
    while db["videos.files"].count_documents({"_id": video_fid}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db["videos.files"].count_documents({"_id": video_fid}) == 0, "the converted video was kept"
    assert admin.download(job["mp3_fid"]).status_code == 200

    # Eight days pass for this job: the converter's next sweep (every second here) removes it.
    db["jobs"].update_one({"_id": object_id(job["job_id"])},
                          {"$set": {"updated_at": datetime.now(UTC) - timedelta(days=8)}})
    deadline = time.monotonic() + 15
    while admin.job(job["job_id"]).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert admin.job(job["job_id"]).status_code == 404
    assert admin.download(job["mp3_fid"]).status_code == 404
    assert db["mp3s.files"].count_documents({"_id": object_id(job["mp3_fid"])}) == 0
