"""POST /upload: what is stored, what is refused and that a refusal stores nothing."""

import contextlib
import io
import os
import tempfile

import pytest
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError

from common import storage
from common.jobs import Jobs
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    MIB,
    assert_nothing_stored,
    bearer,
    multipart_body,
    upload,
)
from tests.unit.gateway_double import (
    ALICE,
    ALICE_TOKEN,
    BOB_TOKEN,
    VIDEO_QUEUE,
    gateway_app,
    gateway_settings,
)

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
    """A request body that runs `probe` once, when the server has read half of it; like a socket, it
    hands over at most what has arrived (PIECE bytes) at a time."""

    PIECE = 64 * 1024

    def __init__(self, data: bytes, probe):
        super().__init__(data)
        self._half, self._probe, self.seen = len(data) // 2, probe, None

    def _at(self):
        if self.seen is None and self.tell() >= self._half:
            self.seen = self._probe()

    def read(self, size=-1):
        self._at()
        return super().read(self.PIECE if size is None or size < 0 else min(size, self.PIECE))

    def readinto(self, buffer):
        self._at()
        return super().readinto(memoryview(buffer)[:self.PIECE])


def open_files_under(folder) -> list[str]:
    """The files this process holds open in `folder`, deleted ones included (a spool is unlinked at once)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith(str(folder))]


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
