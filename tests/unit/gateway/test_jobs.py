"""GET /jobs and GET /jobs/<id>: the caller's jobs only, in stable pages."""

import time
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from common.jobs import Jobs
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    JOB_FIELDS,
    UNKNOWN_ID,
    bearer,
    finished_job,
    job_list,
    upload,
)
from tests.unit.gateway_double import (
    ALICE_ID,
    ALICE_TOKEN,
    BOB,
    BOB_TOKEN,
)

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


@pytest.mark.parametrize("job_id", ["other-users", UNKNOWN_ID, "nope", "../x", "..%2Fx", "%00"])
def test_a_job_that_is_not_the_callers_is_404_json(client, video, job_id):
    if job_id == "other-users":
        job_id = upload(client, video, token=BOB_TOKEN).get_json()["job_id"]
    assert_json_error(client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)), 404)


def add_jobs(db, owner: int, count: int) -> list[str]:
    """`count` queued jobs of `owner`, straight into storage, a millisecond apart (ids are random, so
    only the time orders them); their ids, oldest first."""
    jobs, ids = Jobs(db), []
    for n in range(count):
        job = jobs.create(owner, f"clip{n}.mp4", ObjectId())
        ids.append(str(job["_id"]))
        time.sleep(0.002)
    return ids


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
    ids = add_jobs(memory_db, ALICE_ID, 45)
    first = client.get("/jobs", headers=bearer(ALICE_TOKEN)).get_json()
    assert len(first["jobs"]) == 20 and first["next_cursor"]
    assert walk(client) == (ids[::-1], 3)


@pytest.mark.parametrize(("count", "limit", "pages"), [(0, 5, 1), (5, 5, 1), (6, 5, 2), (100, 100, 1), (101, 100, 2),
                                                       (7, 1, 7)])
def test_every_job_once_newest_first_whatever_the_limit(client, memory_db, count, limit, pages):
    ids = add_jobs(memory_db, ALICE_ID, count)
    add_jobs(memory_db, BOB, 3)
    assert walk(client, limit) == (ids[::-1], pages)


def test_jobs_created_meanwhile_neither_repeat_nor_shift_the_pages(client, memory_db):
    ids = add_jobs(memory_db, ALICE_ID, 12)
    seen, _pages = walk(client, 5, between_pages=lambda: add_jobs(memory_db, ALICE_ID, 3))
    assert seen == ids[::-1]


def test_jobs_created_in_the_same_millisecond_are_all_listed(client, memory_db):
    ids = add_jobs(memory_db, ALICE_ID, 9)
    memory_db["jobs"].update_many({}, {"$set": {"created_at": datetime(2026, 1, 1, tzinfo=UTC)}})
    seen, pages = walk(client, 2)
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 9 and pages == 5


def test_a_cursor_is_opaque_text_that_ends_on_the_last_page(client, memory_db):
    add_jobs(memory_db, ALICE_ID, 3)
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
    add_jobs(memory_db, ALICE_ID, 2)
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
    add_jobs(memory_db, ALICE_ID, 2)
    body = assert_json_error(client.get(f"/jobs?{query}", headers=bearer(ALICE_TOKEN)), 400)
    assert body["error"] == "bad_page"
    assert ("limit" if query.startswith("limit") else "cursor") in body["message"]
