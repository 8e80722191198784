"""One user cannot fill the queue: against the gateway served as the image serves it (gunicorn), the
upload after MAX_ACTIVE_JOBS_PER_USER jobs in flight is answered 429 with Retry-After, before its
body is read, and the client sees that answer (not a broken connection) even while it is still
sending a large file. Deleting a job frees its place."""

import pytest

from runlocal.throwaway import running_stack
from tests.faults.conftest import gunicorn_gateway
from tests.servers import ADMIN, Client, stack_environment

LIMIT = 2


@pytest.fixture
def gateway(servers, tmp_path_factory, tmp_path):
    env = stack_environment(servers, tmp_path_factory, "lim", MAX_ACTIVE_JOBS_PER_USER=str(LIMIT))
    # No converter: the jobs stay queued. One worker: its in-memory MongoDB is the only one.
    with running_stack(env, converters=0) as stack, \
            gunicorn_gateway(env, stack.auth_url, tmp_path / "gateway.log", workers=1) as (url, _process):
        client = Client(url)
        assert client.login(*ADMIN).status_code == 200
        yield client


def test_the_upload_past_the_limit_is_429_before_its_body_and_a_deleted_job_frees_a_place(gateway, samples,
                                                                                             tmp_path):
    queued = [gateway.upload(samples["faststart.mp4"]) for _ in range(LIMIT)]
    assert [r.status_code for r in queued] == [202] * LIMIT
    large = tmp_path / "large.mp4"
    large.write_bytes(samples["faststart.mp4"].read_bytes() + bytes(40 * 1024 * 1024))

    refused = gateway.upload(large)

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_jobs"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(gateway.jobs().json()["jobs"]) == LIMIT  # nothing stored for it

    assert gateway.delete(queued[0].json()["job_id"]).status_code == 204
    assert gateway.upload(large).status_code == 202
    assert gateway.upload(samples["faststart.mp4"]).status_code == 429
