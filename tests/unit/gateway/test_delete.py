"""DELETE /jobs/<id>: the job and its files go together, even through a crash."""

import io

import pytest
from pymongo.errors import ServerSelectionTimeoutError

import common.removal
import common.storage
from common import storage
from common.jobs import Jobs
from common.settings import ConverterSettings, load
from converter.cleanup import Cleanup
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    UNKNOWN_ID,
    bearer,
    finished_job,
    job_list,
    upload,
)
from tests.unit.gateway_double import (
    ALICE_TOKEN,
    BOB_TOKEN,
)

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


@pytest.mark.parametrize("job_id", ["other-users", UNKNOWN_ID, "nope", "..%2Fx", "%00"])
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
    Cleanup(load(ConverterSettings, rabbitmq_url="amqp://x/", mongodb_uri="mongodb://unused/", retention_days=0),
            memory_db).sweep()
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
    Cleanup(load(ConverterSettings, rabbitmq_url="amqp://x/", mongodb_uri="mongodb://unused/"), memory_db).sweep()
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)
