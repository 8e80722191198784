"""The gateway alone, against its public contract (DESIGN.md): mongomock GridFS, a fake broker and a fake auth."""

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import requests
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError
from werkzeug.http import parse_options_header

import common.removal
import common.storage
from common import storage
from common.jobs import Jobs
from common.settings import ConverterSettings, GatewaySettings, load
from converter.cleanup import Cleanup
from gateway.auth_client import AuthClient, AuthUnavailable
from gateway.login_limit import LoginLimit
from tests.unit.envfile import assert_json_error
from tests.unit.gateway_double import (
    ALICE,
    ALICE_TOKEN,
    BOB,
    BOB_TOKEN,
    MP3_QUEUE,
    VIDEO_QUEUE,
    FakeAuth,
    auth_answer,
    gateway_app,
    gateway_settings,
)

pytestmark = pytest.mark.usefixtures("clean_env")

MIB = 1024 * 1024
JOB_FIELDS = {"job_id", "status", "progress", "mp3_fid", "error", "filename", "created_at", "updated_at"}
MP3_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40  # not a real MP3: bytes are bytes


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def settings(clean_env) -> GatewaySettings:
    return gateway_settings()


@pytest.fixture
def app(settings, memory_db, fake_publisher, fake_auth):
    return gateway_app(settings, memory_db, fake_publisher, fake_auth)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def video(samples) -> bytes:
    return samples["faststart.mp4"].read_bytes()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, data: bytes, name: str = "clip.mp4", token: str = ALICE_TOKEN):
    return client.post("/upload", data={"file": (io.BytesIO(data), name)}, headers=bearer(token),
                       content_type="multipart/form-data")


def raw_upload(client, disposition: bytes, data: bytes, token: str = ALICE_TOKEN):
    """A multipart upload whose part header is written by hand, as a hostile client may write it."""
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; " + disposition + b"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--BOUNDARY--\r\n")
    return client.post("/upload", data=body, headers=bearer(token),
                       content_type="multipart/form-data; boundary=BOUNDARY")


def assert_nothing_stored(db, publisher) -> None:
    assert db["videos.files"].count_documents({}) == 0
    assert db["videos.chunks"].count_documents({}) == 0
    assert db["jobs"].count_documents({}) == 0
    assert publisher.published == []


def job_list(body) -> list:
    return body if isinstance(body, list) else body["jobs"]


def finished_job(client, db, video: bytes, name: str = "clip.mp4", token: str = ALICE_TOKEN) -> tuple[str, str]:
    """Upload a video and finish its job with MP3_BYTES, as the converter would: (job_id, mp3_fid)."""
    response = upload(client, video, name, token)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    mp3_fid = storage.bucket(db, storage.MP3S).upload_from_stream("x.mp3", io.BytesIO(MP3_BYTES))
    assert Jobs(db).finish(job_id, mp3_fid)
    return job_id, str(mp3_fid)


def download_name(response) -> str:
    disposition, options = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == "attachment"
    return options["filename"]


# ---------------------------------------------------------------- POST /login


def test_login_forwards_the_credentials_and_answers_the_token_as_text(client, fake_auth):
    response = client.post("/login", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data() == b"header.payload.signature"
    assert fake_auth.logins == ["Basic YWxpY2U6cHc="]


def test_login_refused_by_auth_is_401_json(client, fake_auth):
    fake_auth.login_answer = auth_answer(401, b'{"error":"invalid_credentials","message":"Wrong e-mail or password."}',
                                         "application/json")
    body = assert_json_error(client.post("/login", headers={"Authorization": "Basic eDp5"}), 401)
    assert body["error"] == "invalid_credentials"


def test_login_throttled_by_auth_is_429_with_its_retry_after(client, fake_auth):
    fake_auth.login_answer = auth_answer(429, b'{"error":"too_many_attempts","message":"Wait."}',
                                         "application/json", **{"Retry-After": "42"})
    response = client.post("/login", headers={"Authorization": "Basic eDp5"})
    assert_json_error(response, 429)
    assert response.headers["Retry-After"] == "42"


def test_login_while_auth_is_down_is_503_json(client, fake_auth):
    fake_auth.down = True
    assert_json_error(client.post("/login", headers={"Authorization": "Basic eDp5"}), 503)


# ---------------------------------------------------------------- POST /upload


def test_upload_stores_the_video_records_a_job_and_queues_one_message(client, memory_db, fake_publisher, video):
    response = upload(client, video, "clip.mp4")
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"job_id", "video_fid", "status"}
    assert body["status"] == "queued"
    assert fake_publisher.published == [
        (VIDEO_QUEUE, {"job_id": body["job_id"], "video_fid": body["video_fid"], "mp3_fid": None, "owner": ALICE})
    ]
    stored = storage.bucket(memory_db, storage.VIDEOS).open_download_stream(ObjectId(body["video_fid"]))
    assert stored.read() == video
    assert memory_db["videos.files"].count_documents({}) == 1  # where assert_nothing_stored looks
    job = memory_db["jobs"].find_one({"_id": ObjectId(body["job_id"])})
    assert (job["owner"], job["filename"], job["video_fid"]) == (ALICE, "clip.mp4", ObjectId(body["video_fid"]))


@pytest.mark.parametrize("sample", ["faststart.mp4", "plain.mp4", "video.mkv", "video.mov", "silent.mp4"])
def test_each_kind_of_video_is_accepted(client, memory_db, fake_publisher, samples, sample):
    data = samples[sample].read_bytes()
    response = upload(client, data, sample)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert len(fake_publisher.published) == 1
    fid = ObjectId(response.get_json()["video_fid"])
    assert storage.bucket(memory_db, storage.VIDEOS).open_download_stream(fid).read() == data


def test_a_video_is_recognised_by_its_bytes_not_its_name(client, video):
    assert upload(client, video, "holiday.txt").status_code == 202


@pytest.mark.parametrize("data", [
    pytest.param(b"this is not a video\n", id="text"),
    pytest.param(b"<html><body>hello</body></html>", id="html"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, id="png-image"),
    pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 64, id="mp3-audio"),
    pytest.param(b"PK\x03\x04" + b"\x00" * 64, id="zip"),
])
def test_not_a_video_named_mp4_is_415_and_nothing_is_stored(client, memory_db, fake_publisher, data):
    assert_json_error(upload(client, data, "clip.mp4"), 415)
    assert_nothing_stored(memory_db, fake_publisher)


def test_the_text_sample_is_415(client, memory_db, fake_publisher, samples):
    assert_json_error(upload(client, samples["text.mp4"].read_bytes(), "text.mp4"), 415)
    assert_nothing_stored(memory_db, fake_publisher)


BAD_FORMS = {
    "no-body": lambda video: {},
    "only-a-text-field": lambda video: {"file": "not a file"},
    "empty-file": lambda video: {"file": (io.BytesIO(b""), "clip.mp4")},
    "two-files-in-file": lambda video: {"file": [(io.BytesIO(video), "a.mp4"), (io.BytesIO(video), "b.mp4")]},
    "another-field-plus-file": lambda video: {"file": (io.BytesIO(video), "a.mp4"),
                                              "other": (io.BytesIO(video), "b.mp4")},
    "only-another-field": lambda video: {"video": (io.BytesIO(video), "a.mp4")},
    "a-text-field-plus-file": lambda video: {"file": (io.BytesIO(video), "a.mp4"), "note": "hello"},
}


@pytest.mark.parametrize("form", BAD_FORMS)
def test_not_exactly_one_non_empty_file_is_400(client, memory_db, fake_publisher, video, form):
    response = client.post("/upload", data=BAD_FORMS[form](video), headers=bearer(ALICE_TOKEN),
                           content_type="multipart/form-data")
    assert_json_error(response, 400)
    assert_nothing_stored(memory_db, fake_publisher)


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-token"),
    pytest.param(bearer("token-mallory"), id="bad-token"),
    pytest.param({"Authorization": "Bearer "}, id="empty-token"),
    pytest.param({"Authorization": "Basic YWxpY2U6cHc="}, id="basic-instead-of-bearer"),
    pytest.param({"Authorization": ALICE_TOKEN}, id="no-scheme"),
])
def test_upload_without_a_valid_token_is_401_and_nothing_is_stored(client, memory_db, fake_publisher, video,
                                                                    headers):
    response = client.post("/upload", data={"file": (io.BytesIO(video), "clip.mp4")}, headers=headers,
                           content_type="multipart/form-data")
    assert_json_error(response, 401)
    assert_nothing_stored(memory_db, fake_publisher)


def test_upload_while_auth_is_down_is_503_and_nothing_is_stored(client, memory_db, fake_publisher, fake_auth,
                                                                 video):
    fake_auth.down = True
    assert_json_error(upload(client, video), 503)
    assert_nothing_stored(memory_db, fake_publisher)


def test_upload_well_over_max_upload_mb_is_413_json_and_nothing_is_stored(client, memory_db, fake_publisher, video):
    data = video + b"\x00" * (2 * MIB)
    assert_json_error(upload(client, data), 413)
    assert_nothing_stored(memory_db, fake_publisher)


def test_a_chunked_upload_over_max_upload_mb_is_413_and_nothing_is_stored(client, memory_db, fake_publisher, video):
    # No Content-Length: the limit must hold while the body streams in.
    body = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n\r\n"
            + video + b"\x00" * (2 * MIB) + b"\r\n--B--\r\n")
    response = client.post("/upload", input_stream=io.BytesIO(body),
                           headers={**bearer(ALICE_TOKEN), "Transfer-Encoding": "chunked",
                                    "Content-Type": "multipart/form-data; boundary=B"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert_json_error(response, 413)
    assert_nothing_stored(memory_db, fake_publisher)


class ProbedBody(io.BytesIO):
    """A request body that runs `probe` once, when the server has read half of it."""

    def __init__(self, data: bytes, probe):
        super().__init__(data)
        self._half, self._probe, self.seen = len(data) // 2, probe, None

    def _at(self):
        if self.seen is None and self.tell() >= self._half:
            self.seen = self._probe()

    def read(self, size=-1):
        self._at()
        return super().read(size)

    def readinto(self, buffer):
        self._at()
        return super().readinto(buffer)


def open_files_under(folder) -> list[str]:
    """The files this process holds open in `folder`, deleted ones included (a spool is unlinked at once)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith(str(folder))]


def multipart_body(data: bytes, name: str = "clip.mp4", tail: bytes = b"\r\n--B--\r\n") -> bytes:
    return (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name.encode() + b"\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n" + data + tail)


def test_an_upload_goes_to_storage_without_a_temp_file(client, memory_db, video, tmp_path, monkeypatch):
    # Issue 15: werkzeug spooled each upload whole into the temp directory before the route saw it,
    # so 16 uploads of 1 GiB needed 16 GiB of the container's ephemeral storage.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = video + b"\x00" * (MIB - len(video))
    body = ProbedBody(multipart_body(data), lambda: open_files_under(tmp_path))
    response = client.post("/upload", input_stream=body, content_length=len(body.getvalue()),
                           headers={**bearer(ALICE_TOKEN), "Content-Type": "multipart/form-data; boundary=B"})
    assert response.status_code == 202
    assert body.seen == []
    stored = storage.bucket(memory_db, storage.VIDEOS).open_download_stream(ObjectId(response.get_json()["video_fid"]))
    assert stored.read() == data


def test_a_non_video_is_refused_from_its_first_bytes_without_reading_the_rest(client, memory_db, fake_publisher):
    body = io.BytesIO(multipart_body(b"this is not a video\n" * 50_000))  # 1 MB
    response = client.post("/upload", input_stream=body, content_length=len(body.getvalue()),
                           headers={**bearer(ALICE_TOKEN), "Content-Type": "multipart/form-data; boundary=B"})
    assert_json_error(response, 415)
    assert body.tell() < 256 * 1024
    assert_nothing_stored(memory_db, fake_publisher)


def test_an_upload_that_breaks_off_is_400_and_nothing_is_stored(client, memory_db, fake_publisher, video):
    body = multipart_body(video)
    response = client.post("/upload", input_stream=io.BytesIO(body[: len(body) // 2]), content_length=len(body),
                           headers={**bearer(ALICE_TOKEN), "Content-Type": "multipart/form-data; boundary=B"})
    assert_json_error(response, 400)
    assert response.get_json()["error"] == "client_disconnected"
    assert_nothing_stored(memory_db, fake_publisher)


def test_a_chunked_upload_without_its_closing_boundary_is_400_and_nothing_is_stored(client, memory_db,
                                                                                   fake_publisher, video):
    response = client.post("/upload", input_stream=io.BytesIO(multipart_body(video, tail=b"")),
                           headers={**bearer(ALICE_TOKEN), "Transfer-Encoding": "chunked",
                                    "Content-Type": "multipart/form-data; boundary=B"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert_json_error(response, 400)
    assert_nothing_stored(memory_db, fake_publisher)


def test_a_second_part_after_the_stored_file_is_400_and_removes_it(client, memory_db, fake_publisher, video):
    second = b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="b.mp4"\r\n\r\n' + video
    response = client.post("/upload", input_stream=io.BytesIO(multipart_body(video, tail=second + b"\r\n--B--\r\n")),
                           headers={**bearer(ALICE_TOKEN), "Content-Type": "multipart/form-data; boundary=B"})
    assert_json_error(response, 400)
    assert response.get_json()["error"] == "one_file_expected"
    assert_nothing_stored(memory_db, fake_publisher)


def test_pieces_that_stop_with_an_error_leave_no_chunk_stored(memory_db):
    # Past pymongo's 48 MB upload buffer, so that some chunks are already written when the error comes.
    def pieces():
        for _ in range(60):
            yield b"\x01" * MIB
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        storage.bucket(memory_db, storage.VIDEOS).upload_from_chunks("clip.mp4", pieces(), metadata={})
    assert memory_db["videos.files"].count_documents({}) == 0
    assert memory_db["videos.chunks"].count_documents({}) == 0


def test_a_file_of_exactly_max_upload_mb_is_accepted(client, video):
    assert upload(client, video + b"\x00" * (MIB - len(video))).status_code == 202


def test_a_file_one_byte_over_max_upload_mb_is_413(client, memory_db, fake_publisher, video):
    assert_json_error(upload(client, video + b"\x00" * (MIB + 1 - len(video))), 413)
    assert_nothing_stored(memory_db, fake_publisher)


def test_upload_when_the_queue_refuses_is_503_and_leaves_no_orphan(client, memory_db, fake_publisher, video):
    fake_publisher.fail = True
    assert_json_error(upload(client, video), 503)
    assert_nothing_stored(memory_db, fake_publisher)


def test_upload_when_the_job_cannot_be_recorded_is_503_and_leaves_no_orphan(client, memory_db, fake_publisher,
                                                                          video, monkeypatch):
    monkeypatch.setattr(Jobs, "create", lambda *_args: (_ for _ in ()).throw(ServerSelectionTimeoutError("down")))
    assert_json_error(upload(client, video), 503)
    assert_nothing_stored(memory_db, fake_publisher)


def upload_counts(db, publisher) -> tuple[int, int, int]:
    return db["videos.files"].count_documents({}), db["jobs"].count_documents({}), len(publisher.published)


def assert_too_many_jobs(response) -> None:
    assert_json_error(response, 429)
    assert response.get_json()["error"] == "too_many_jobs"
    assert int(response.headers["Retry-After"]) >= 1


def test_a_sixth_upload_while_five_are_in_flight_is_429_and_stores_nothing(client, memory_db, fake_publisher,
                                                                          video):
    ids = [upload(client, video, f"{n}.mp4").get_json()["job_id"] for n in range(5)]
    assert len(set(ids)) == 5
    Jobs(memory_db).start_attempt(ids[0])  # converting counts as in flight too
    before = upload_counts(memory_db, fake_publisher)

    assert_too_many_jobs(upload(client, video, "sixth.mp4"))

    assert upload_counts(memory_db, fake_publisher) == before == (5, 5, 5)
    assert upload(client, video, "bobs.mp4", BOB_TOKEN).status_code == 202  # the limit is per user


@pytest.mark.parametrize("settle", ["done", "failed", "deleted"])
def test_a_job_that_ends_frees_its_place(client, memory_db, fake_publisher, video, settle):
    ids = [upload(client, video, f"{n}.mp4").get_json()["job_id"] for n in range(5)]
    assert_too_many_jobs(upload(client, video))
    jobs = Jobs(memory_db)
    if settle == "done":
        jobs.finish(ids[2], ObjectId())
    elif settle == "failed":
        jobs.fail(ids[2], "The video has no audio track.")
    else:
        assert client.delete(f"/jobs/{ids[2]}", headers=bearer(ALICE_TOKEN)).status_code == 204

    assert upload(client, video, "again.mp4").status_code == 202
    assert_too_many_jobs(upload(client, video))


def test_max_active_jobs_per_user_sets_the_limit(memory_db, fake_publisher, fake_auth, video):
    client = gateway_app(gateway_settings(max_active_jobs_per_user=2), memory_db, fake_publisher,
                         fake_auth).test_client()
    assert [upload(client, video).status_code for _ in range(3)] == [202, 202, 429]


def test_an_upload_that_loses_the_race_for_the_last_place_undoes_itself(client, memory_db, fake_publisher,
                                                                         video, monkeypatch):
    """Two uploads both saw four jobs in flight; the one whose recount finds six leaves nothing behind."""
    for n in range(4):
        assert upload(client, video, f"{n}.mp4").status_code == 202
    real_count = Jobs.count_active
    counts = []

    def other_upload_lands_meanwhile(jobs, owner):
        counts.append(real_count(jobs, owner))
        if len(counts) == 2:  # the recount: the racing upload's job exists by now
            Jobs(memory_db).create(owner, "racer.mp4", ObjectId())
            return real_count(jobs, owner)
        return counts[-1]

    monkeypatch.setattr(Jobs, "count_active", other_upload_lands_meanwhile)
    before = upload_counts(memory_db, fake_publisher)

    assert_too_many_jobs(upload(client, video, "loser.mp4"))

    assert counts == [4, 5]
    videos, jobs, published = upload_counts(memory_db, fake_publisher)
    assert (videos, jobs - 1, published) == before  # only the racer's job is new
    assert memory_db["jobs"].count_documents({"filename": "loser.mp4"}) == 0


# ---------------------------------------------------------------- GET /jobs, GET /jobs/<id>


def test_jobs_lists_only_the_callers_jobs_newest_first(client, video):
    alice_ids = [upload(client, video, name).get_json()["job_id"] for name in ("a.mp4", "b.mp4", "c.mp4")]
    bob_id = upload(client, video, "bob.mp4", BOB_TOKEN).get_json()["job_id"]

    response = client.get("/jobs", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    jobs = job_list(response.get_json())
    assert [job["job_id"] for job in jobs] == alice_ids[::-1]
    assert [job["filename"] for job in jobs] == ["c.mp4", "b.mp4", "a.mp4"]

    bobs = job_list(client.get("/jobs", headers=bearer(BOB_TOKEN)).get_json())
    assert [job["job_id"] for job in bobs] == [bob_id]


def test_jobs_of_a_new_user_is_an_empty_list(client):
    response = client.get("/jobs", headers=bearer(BOB_TOKEN))
    assert response.status_code == 200
    assert job_list(response.get_json()) == []


def test_a_job_shows_every_documented_field(client, video):
    job_id = upload(client, video, "clip.mp4").get_json()["job_id"]
    response = client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    job = response.get_json()
    assert set(job) == JOB_FIELDS
    assert job["job_id"] == job_id
    assert (job["status"], job["progress"], job["mp3_fid"], job["error"]) == ("queued", 0, None, None)
    assert job["filename"] == "clip.mp4"
    assert datetime.fromisoformat(job["created_at"]) <= datetime.fromisoformat(job["updated_at"])


def test_a_finished_job_shows_its_mp3(client, memory_db, video):
    job_id, mp3_fid = finished_job(client, memory_db, video)
    job = client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).get_json()
    assert (job["status"], job["progress"], job["mp3_fid"]) == ("done", 100, mp3_fid)


@pytest.mark.parametrize("job_id", ["other-users", str(ObjectId()), "nope", "../x", "..%2Fx", "%00"])
def test_a_job_that_is_not_the_callers_is_404_json(client, video, job_id):
    if job_id == "other-users":
        job_id = upload(client, video, token=BOB_TOKEN).get_json()["job_id"]
    assert_json_error(client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)


def add_jobs(db, owner: str, count: int) -> list[str]:
    """`count` queued jobs of `owner`, straight into storage; their ids, oldest first."""
    jobs = Jobs(db)
    return [str(jobs.create(owner, f"clip{n}.mp4", ObjectId())["_id"]) for n in range(count)]


def walk(client, limit=None, token=ALICE_TOKEN, between_pages=lambda: None) -> tuple[list[str], int]:
    """Every job id, page after page: (ids in the order given, number of pages)."""
    ids, cursor, pages = [], None, 0
    while True:
        params = {key: value for key, value in (("limit", limit), ("cursor", cursor)) if value is not None}
        response = client.get("/jobs", query_string=params, headers=bearer(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        ids += [job["job_id"] for job in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        between_pages()


def test_jobs_come_in_pages_of_twenty_by_default(client, memory_db):
    ids = add_jobs(memory_db, ALICE, 45)
    first = client.get("/jobs", headers=bearer(ALICE_TOKEN)).get_json()
    assert len(first["jobs"]) == 20 and first["next_cursor"]
    assert walk(client) == (ids[::-1], 3)


@pytest.mark.parametrize(("count", "limit", "pages"), [(0, 5, 1), (5, 5, 1), (6, 5, 2), (100, 100, 1), (101, 100, 2),
                                                       (7, 1, 7)])
def test_every_job_once_newest_first_whatever_the_limit(client, memory_db, count, limit, pages):
    ids = add_jobs(memory_db, ALICE, count)
    add_jobs(memory_db, BOB, 3)
    assert walk(client, limit) == (ids[::-1], pages)


def test_jobs_created_meanwhile_neither_repeat_nor_shift_the_pages(client, memory_db):
    ids = add_jobs(memory_db, ALICE, 12)
    seen, _pages = walk(client, 5, between_pages=lambda: add_jobs(memory_db, ALICE, 3))
    assert seen == ids[::-1]


def test_jobs_created_in_the_same_millisecond_are_all_listed(client, memory_db):
    ids = add_jobs(memory_db, ALICE, 9)
    memory_db["jobs"].update_many({}, {"$set": {"created_at": datetime(2026, 1, 1, tzinfo=UTC)}})
    seen, pages = walk(client, 2)
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 9 and pages == 5


def test_a_cursor_is_opaque_text_that_ends_on_the_last_page(client, memory_db):
    add_jobs(memory_db, ALICE, 3)
    body = client.get("/jobs?limit=2", headers=bearer(ALICE_TOKEN)).get_json()
    assert isinstance(body["next_cursor"], str) and body["next_cursor"].isascii()
    last = client.get("/jobs", query_string={"limit": 2, "cursor": body["next_cursor"]},
                      headers=bearer(ALICE_TOKEN)).get_json()
    assert (len(last["jobs"]), last["next_cursor"]) == (1, None)


def test_a_cursor_from_someone_else_reveals_nothing_of_theirs(client, memory_db):
    add_jobs(memory_db, BOB, 4)
    bobs_cursor = client.get("/jobs?limit=1", headers=bearer(BOB_TOKEN)).get_json()["next_cursor"]
    body = client.get("/jobs", query_string={"cursor": bobs_cursor}, headers=bearer(ALICE_TOKEN)).get_json()
    assert body == {"jobs": [], "next_cursor": None}


def test_any_cursor_of_the_documented_shape_is_a_page_perhaps_empty(client, memory_db):
    add_jobs(memory_db, ALICE, 2)
    for cursor in ("0" * 25, "f" * 35, "1" + "0" * 24):
        response = client.get("/jobs", query_string={"cursor": cursor}, headers=bearer(ALICE_TOKEN))
        assert response.status_code == 200
    far_future = "f" * 11 + "f" * 24
    assert len(job_list(client.get(f"/jobs?cursor={far_future}", headers=bearer(ALICE_TOKEN)).get_json())) == 2


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit=", "limit=2.5",
                                   "limit=%EF%BC%95", "cursor=", "cursor=not-a-cursor", "cursor=%00",
                                   "cursor=MTIz", "cursor=eHh4Lnl5eQ", "cursor=%C3%A9t%C3%A9", "cursor=" + "0" * 24,
                                   "cursor=" + "F" * 30, "cursor=" + "0" * 36])
def test_a_bad_limit_or_cursor_is_400_with_a_message(client, memory_db, query):
    add_jobs(memory_db, ALICE, 2)
    body = assert_json_error(client.get(f"/jobs?{query}", headers=bearer(ALICE_TOKEN)), 400)
    assert body["error"] == "bad_page"
    assert ("limit" if query.startswith("limit") else "cursor") in body["message"]


# ---------------------------------------------------------------- DELETE /jobs/<id>


def stored_counts(db) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in
            ("jobs", "videos.files", "videos.chunks", "mp3s.files", "mp3s.chunks")}


def test_delete_removes_the_job_its_video_and_its_mp3(client, memory_db, video):
    job_id, mp3_fid = finished_job(client, memory_db, video)
    other_id, _other_mp3 = finished_job(client, memory_db, video, "keep.mp4")
    before = stored_counts(memory_db)

    response = client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN))

    assert response.status_code == 204
    assert response.get_data() == b""
    after = stored_counts(memory_db)
    assert before["videos.chunks"] > after["videos.chunks"] > 0 and before["mp3s.chunks"] > after["mp3s.chunks"] > 0
    assert {key: before[key] - after[key] for key in ("jobs", "videos.files", "mp3s.files")} == \
        {"jobs": 1, "videos.files": 1, "mp3s.files": 1}
    assert_json_error(client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)
    assert_json_error(client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN)), 404)
    assert [job["job_id"] for job in job_list(client.get("/jobs", headers=bearer(ALICE_TOKEN)).get_json())] == \
        [other_id]
    assert_json_error(client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)


def test_delete_of_a_queued_job_removes_its_video(client, memory_db, video):
    job_id = upload(client, video).get_json()["job_id"]
    assert client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).status_code == 204
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


@pytest.mark.parametrize("job_id", ["other-users", str(ObjectId()), "nope", "..%2Fx", "%00"])
def test_delete_of_a_job_that_is_not_the_callers_is_404_and_deletes_nothing(client, memory_db, video, job_id):
    if job_id == "other-users":
        job_id, _mp3 = finished_job(client, memory_db, video, token=BOB_TOKEN)
    before = stored_counts(memory_db)
    assert_json_error(client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)
    assert stored_counts(memory_db) == before


class Crash(BaseException):
    """The process dies here: nothing catches it."""


REMOVAL_STEPS = ["video", "mp3", "mp3-leftovers", "document"]


@pytest.mark.parametrize("step", REMOVAL_STEPS)
def test_a_crash_in_the_middle_of_a_delete_leaves_nothing_a_user_can_see(client, memory_db, video, monkeypatch, step):
    job_id, mp3_fid = finished_job(client, memory_db, video)
    # A leftover MP3 of an attempt that died, so that every step has something to do.
    storage.bucket(memory_db, storage.MP3S).upload_from_stream("old.mp3", io.BytesIO(b"x"),
                                                               metadata={"job_id": job_id})
    crash_at(monkeypatch, memory_db, step)

    with pytest.raises(Crash):
        client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN))

    monkeypatch.undo()
    assert_json_error(client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)
    assert_json_error(client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN)), 404)
    assert job_list(client.get("/jobs", headers=bearer(ALICE_TOKEN)).get_json()) == []
    assert_json_error(client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)
    # The converter's next cleanup finishes what the crash left.
    Cleanup(load(ConverterSettings, rabbitmq_url="amqp://x/", retention_days=0), memory_db).sweep()
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


def crash_at(monkeypatch, db, step: str) -> None:
    """Make the removal die at `step` of common.removal (the job is hidden by then)."""
    def crash(*_args, **_kwargs):
        raise Crash(step)

    if step == "document":
        monkeypatch.setattr(Jobs, "delete", crash)
        return
    calls = {"video": 1, "mp3": 2, "mp3-leftovers": 3}[step]
    real = storage.delete_file
    seen = []

    def delete_file(files, file_id):
        seen.append(file_id)
        if len(seen) == calls:
            raise Crash(step)
        real(files, file_id)

    monkeypatch.setattr(common.removal.storage, "delete_file", delete_file)


def test_delete_when_storage_fails_after_hiding_the_job_is_204_and_cleanup_finishes(client, memory_db, video,
                                                                                    monkeypatch):
    job_id, _mp3 = finished_job(client, memory_db, video)
    monkeypatch.setattr(common.removal.storage, "delete_file",
                        lambda *_args: (_ for _ in ()).throw(ServerSelectionTimeoutError("down")))

    assert client.delete(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).status_code == 204

    monkeypatch.undo()
    assert_json_error(client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)
    Cleanup(load(ConverterSettings, rabbitmq_url="amqp://x/"), memory_db).sweep()
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


PROTECTED = [("post", "/upload"), ("get", "/jobs"), ("get", f"/jobs/{ObjectId()}"), ("delete", f"/jobs/{ObjectId()}"),
             ("get", f"/download?fid={ObjectId()}")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", [{}, bearer("token-mallory")], ids=["no-token", "bad-token"])
def test_every_user_call_needs_a_valid_token(client, method, path, headers):
    assert_json_error(getattr(client, method)(path, headers=headers), 401)


def test_storage_down_is_503_json(client, monkeypatch):
    def down(*_args, **_kwargs):
        raise ServerSelectionTimeoutError("MongoDB is away (test)")

    monkeypatch.setattr(Jobs, "list_owned", down)
    assert_json_error(client.get("/jobs", headers=bearer(ALICE_TOKEN)), 503)


# ---------------------------------------------------------------- GET /download


def test_download_streams_the_mp3_named_after_the_upload(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, "clip.mp4")
    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.get_data() == MP3_BYTES
    assert download_name(response) == "clip.mp3"


@pytest.mark.parametrize("query", ["", "?fid=", "?fid=%20", "?other=1"])
def test_download_without_a_fid_is_400(client, query):
    assert_json_error(client.get(f"/download{query}", headers=bearer(ALICE_TOKEN)), 400)


@pytest.mark.parametrize("fid", ["nope", "../x", "..%2F..%2Fetc%2Fpasswd", str(ObjectId()), "0" * 24, "{}"])
def test_download_of_a_malformed_or_unknown_fid_is_404(client, memory_db, video, fid):
    finished_job(client, memory_db, video)  # something to find, were the lookup sloppy
    assert_json_error(client.get(f"/download?fid={fid}", headers=bearer(ALICE_TOKEN)), 404)


def test_download_of_another_users_mp3_is_404(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, token=BOB_TOKEN)
    assert_json_error(client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN)), 404)
    assert client.get(f"/download?fid={mp3_fid}", headers=bearer(BOB_TOKEN)).status_code == 200


def test_download_of_a_video_fid_is_404(client, video):
    video_fid = upload(client, video).get_json()["video_fid"]
    assert_json_error(client.get(f"/download?fid={video_fid}", headers=bearer(ALICE_TOKEN)), 404)


HOSTILE_NAMES = {
    "crlf-header-injection": b"filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20session%3Dstolen%0D%0A.mp4",
    "bare-lf": b"filename*=UTF-8''a%0Ab.mp4",
    "quotes": b'filename="say \\"hi\\"; filename=x.exe.mp4"',
    "posix-traversal": b'filename="../../etc/passwd.mp4"',
    "windows-traversal": b'filename="..\\\\..\\\\windows\\\\win.ini.mp4"',
    "absolute-path": b'filename="/etc/cron.d/job.mp4"',
    "non-ascii": 'filename="vidéo 東京 видео.mp4"'.encode(),
    "nul-and-controls": b"filename*=UTF-8''a%00b%1Bc%7F.mp4",
    "only-dots": b'filename="...."',
}


@pytest.mark.parametrize("kind", HOSTILE_NAMES)
def test_download_is_safe_for_hostile_upload_names(client, memory_db, video, kind):
    response = raw_upload(client, HOSTILE_NAMES[kind], video)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    mp3_fid = storage.bucket(memory_db, storage.MP3S).upload_from_stream("x.mp3", io.BytesIO(MP3_BYTES))
    Jobs(memory_db).finish(job_id, mp3_fid)

    shown = client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).get_json()["filename"]
    assert shown and not any(c in shown for c in "/\\\r\n\x00")

    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    assert response.get_data() == MP3_BYTES
    assert "Set-Cookie" not in response.headers
    for name, value in response.headers.items():
        assert "\r" not in value and "\n" not in value, (name, value)
    name = download_name(response)
    assert name.endswith(".mp3")
    assert not any(c in name for c in "/\\\r\n\x00"), name


def test_a_non_ascii_download_name_is_sent_in_the_rfc_5987_form(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, "видео.mp4")
    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    header = response.headers["Content-Disposition"]
    header.encode("latin-1")  # PEP 3333: a header value a WSGI server can send
    options = parse_options_header(header.replace("filename*=", "filename_ext="))[1]
    assert options.get("filename_ext", "").lower().startswith("utf-8''")
    assert unquote(options["filename_ext"].split("''", 1)[1]) == "видео.mp3"


# ---------------------------------------------------------------- health


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.fixture
def consumers(fake_publisher):
    fake_publisher.consumers = {VIDEO_QUEUE: 1, MP3_QUEUE: 2}
    return fake_publisher


def test_readyz_is_200_when_every_dependency_is_ok(client, consumers):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True
    assert body["checks"] == dict.fromkeys(["auth", "mongodb", "rabbitmq", "converter", "notification"], "ok")


def _auth_down(fake_auth, fake_publisher, monkeypatch):
    fake_auth.down = True


def _broker_down(fake_auth, fake_publisher, monkeypatch):
    fake_publisher.fail = True


def _no_converter(fake_auth, fake_publisher, monkeypatch):
    fake_publisher.consumers[VIDEO_QUEUE] = 0


def _no_notification(fake_auth, fake_publisher, monkeypatch):
    del fake_publisher.consumers[MP3_QUEUE]


def _mongodb_down(fake_auth, fake_publisher, monkeypatch):
    def down(_db):
        raise ServerSelectionTimeoutError("MongoDB is away (test)")

    monkeypatch.setattr(common.storage, "ping", down)


@pytest.mark.parametrize(("failure", "failing"), [
    (_auth_down, "auth"), (_broker_down, "rabbitmq"), (_no_converter, "converter"),
    (_no_notification, "notification"), (_mongodb_down, "mongodb"),
])
def test_readyz_is_503_naming_the_failing_dependency(client, consumers, fake_auth, monkeypatch, failure, failing):
    failure(fake_auth, consumers, monkeypatch)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ready"] is False
    assert [name for name, state in body["checks"].items() if state != "ok"] == [failing]
    assert body["checks"][failing] == "down"


def test_readyz_tells_strangers_only_ok_or_down_and_the_log_tells_the_operator_why(
        client, fake_auth, fake_publisher, monkeypatch, caplog):
    """What a driver says when its server is away names internal addresses; the queues have internal names."""
    def auth_down():
        raise AuthUnavailable("HTTPConnectionPool(host='auth', port=5000): Max retries exceeded")

    def broker_down():
        raise ConnectionError("AMQPConnectionError: rabbitmq:5672 [Errno 111] Connection refused")

    def mongodb_down(_db):
        raise ServerSelectionTimeoutError("mongodb:27017: [Errno 111] Connection refused")

    monkeypatch.setattr(fake_auth, "ping", auth_down)
    monkeypatch.setattr(fake_publisher, "ping", broker_down)
    monkeypatch.setattr(common.storage, "ping", mongodb_down)

    with caplog.at_level(logging.WARNING, logger="gateway.api.health"):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "checks": dict.fromkeys(
        ["auth", "mongodb", "rabbitmq", "converter", "notification"], "down")}
    text = response.get_data(as_text=True)
    for internal in ("auth", "5000", "mongodb:27017", "rabbitmq:5672", VIDEO_QUEUE, MP3_QUEUE, "Errno", "refused"):
        assert internal not in text.replace('"auth"', ""), internal
    why = {r.dependency: r.error for r in caplog.records if r.getMessage() == "dependency not ready"}
    assert "port=5000" in why["auth"]
    assert "mongodb:27017" in why["mongodb"]
    assert "rabbitmq:5672" in why["rabbitmq"]
    assert VIDEO_QUEUE in why["converter"] and MP3_QUEUE in why["notification"]


def test_readyz_scope_gateway_ignores_the_consumers(client, fake_publisher):
    response = client.get("/readyz?scope=gateway")
    assert response.status_code == 200
    assert response.get_json()["checks"] == dict.fromkeys(["auth", "mongodb", "rabbitmq"], "ok")
    assert client.get("/readyz").status_code == 503  # the full check does see the missing consumers


def test_readyz_scope_gateway_still_checks_the_gateways_own_dependencies(client, fake_auth):
    fake_auth.down = True
    assert client.get("/readyz?scope=gateway").status_code == 503


# ---------------------------------------------------------------- errors


def test_unknown_route_is_404_json(client):
    assert_json_error(client.get("/no/such/route"), 404)


@pytest.mark.parametrize(("method", "path"), [("get", "/upload"), ("get", "/login"), ("delete", "/jobs"),
                                              ("post", "/download")])
def test_wrong_method_is_405_json(client, method, path):
    response = getattr(client, method)(path, headers=bearer(ALICE_TOKEN))
    assert_json_error(response, 405)
    assert response.headers.get("Allow")


class CountingAuth:
    """auth's /validate as an HTTP server would answer it, counting the calls."""

    def __init__(self, exp_in: float = 3600):
        self.calls = 0
        self.exp_in = exp_in

    def post(self, url, headers, timeout):
        self.calls += 1
        response = requests.Response()
        token = headers["Authorization"].removeprefix("Bearer ")
        if token == "good":
            response.status_code = 200
            now = time.time()
            response._content = json.dumps({"sub": "alice@example.com", "admin": False, "iat": int(now),
                                            "exp": now + self.exp_in}).encode()
        else:
            response.status_code = 401
            response._content = b'{"error": "invalid_token", "message": "no"}'
        return response


def test_an_accepted_token_is_not_validated_again_for_each_request():
    client = AuthClient("http://auth.test", timeout=1)
    client._http = CountingAuth()
    assert [client.validate("good")["sub"] for _ in range(5)] == ["alice@example.com"] * 5
    assert client._http.calls == 1


def test_an_accepted_token_is_asked_about_again_once_the_cache_time_is_over():
    # What makes a deletion or a password change take effect here: auth is asked again at the latest
    # after TOKEN_CACHE_SECONDS, and refuses the token then.
    now = [1000.0]
    client = AuthClient("http://auth.test", timeout=1, cache_seconds=60, clock=lambda: now[0])
    client._http = CountingAuth()
    client.validate("good")
    now[0] += 59.9
    client.validate("good")
    assert client._http.calls == 1
    now[0] += 0.2
    client.validate("good")
    assert client._http.calls == 2


def test_a_token_cache_of_0_seconds_asks_auth_every_time():
    client = AuthClient("http://auth.test", timeout=1, cache_seconds=0)
    client._http = CountingAuth()
    for _ in range(3):
        assert client.validate("good")["sub"] == "alice@example.com"
    assert client._http.calls == 3


def test_a_refused_or_expired_token_is_asked_about_every_time():
    client = AuthClient("http://auth.test", timeout=1)
    client._http = CountingAuth(exp_in=-1)
    assert client.validate("bad") is None
    assert client.validate("bad") is None
    client.validate("good")
    client.validate("good")
    assert client._http.calls == 4


# ---------------------------------------------------------------- logins per client address


def limited_client(memory_db, fake_publisher, fake_auth, **overrides):
    settings = gateway_settings(login_attempts_per_client="3/minute", **overrides)
    return gateway_app(settings, memory_db, fake_publisher, fake_auth).test_client()


def login_from(client, remote_addr="203.0.113.7", **headers):
    return client.post("/login", headers={"Authorization": "Basic eDp5", **headers},
                       environ_base={"REMOTE_ADDR": remote_addr})


def test_a_client_over_its_login_allowance_is_429_with_retry_after_and_auth_is_not_asked(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    assert [login_from(client).status_code for _ in range(3)] == [200] * 3
    response = login_from(client)
    assert assert_json_error(response, 429)["error"] == "too_many_logins"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert len(fake_auth.logins) == 3
    assert login_from(client, "198.51.100.9").status_code == 200  # another address has its own allowance


def test_the_login_allowance_comes_back_after_the_window(clean_env, memory_db, fake_publisher, fake_auth, monkeypatch):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    for _ in range(3):
        login_from(client)
    assert login_from(client).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr("limits.storage.memory.time.time", lambda: later)
    assert login_from(client).status_code == 200


def test_forwarded_for_is_ignored_unless_the_connection_is_a_trusted_proxy(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth)
    for n in range(3):
        assert login_from(client, **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code == 200
    assert login_from(client, **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429  # one client, whatever it claims


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
        clean_env, memory_db, fake_publisher, fake_auth):
    client = limited_client(memory_db, fake_publisher, fake_auth, trusted_proxies="10.0.0.0/8")
    proxy = "10.1.2.3"
    for _ in range(3):
        assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 200
    assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert login_from(client, proxy, **{"X-Forwarded-For": "198.51.100.2"}).status_code == 200
    # What the client itself wrote to the left of the address the proxy saw changes nothing.
    assert login_from(client, proxy, **{"X-Forwarded-For": "192.0.2.50, 198.51.100.1"}).status_code == 429


@pytest.mark.parametrize(("remote", "forwarded", "client"), [
    ("203.0.113.7", "", "203.0.113.7"),
    ("203.0.113.7", "10.0.0.1", "203.0.113.7"),                # not a proxy: its header is its own claim
    ("10.0.0.5", "", "10.0.0.5"),                              # a trusted proxy that names nobody
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),     # the spoofed hop is left of the real one
    ("10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),    # two trusted proxies in a row
    ("10.0.0.5", "not-an-address", "10.0.0.5"),
    ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
])
def test_the_client_address(remote, forwarded, client):
    assert LoginLimit("5/minute", "10.0.0.0/8").client(remote, forwarded) == client


# ---------------------------------------------------------------- bodies /login refuses unread


@pytest.mark.parametrize("headers", [{"Content-Length": str(10 * MIB)}, {"Transfer-Encoding": "chunked"}])
def test_login_with_a_body_is_413_before_auth_is_asked(client, fake_auth, headers):
    response = client.post("/login", headers={"Authorization": "Basic YTpi", **headers}, data=b"x" * 2048)
    assert assert_json_error(response, 413)["error"] == "too_large"
    assert fake_auth.logins == []
