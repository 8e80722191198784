"""Load: 50 uploads from 8 concurrent clients, all converted, each to its own MP3, no 5xx."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from common import storage
from runlocal import mongo
from runlocal.throwaway import running_stack
from sample_media import make_video
from tests.servers import ADMIN, Client

UPLOADS = 50
CLIENTS = 8


@pytest.fixture
def short_clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", 2)


def test_fifty_uploads_from_eight_clients_all_end_done(fault_env, short_clip):
    with running_stack(fault_env, converters=2) as stack:
        def one_client(count: int) -> list[tuple[int, dict]]:
            client = Client(stack.gateway_url)
            assert client.login(*ADMIN).status_code == 200
            results = []
            for _ in range(count):
                response = client.upload(short_clip)
                results.append((response.status_code, response.json()))
            return [(status, client.wait_final(body["job_id"], timeout=300) if status == 202 else body)
                    for status, body in results]

        shares = [UPLOADS // CLIENTS + (1 if i < UPLOADS % CLIENTS else 0) for i in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [r for share in pool.map(one_client, shares) for r in share]
        db = mongo.connect(fault_env["MONGODB_URI"], fault_env["MONGODB_DB"])
        mp3_count = db[f"{storage.MP3S}.files"].count_documents({})

    assert len(results) == UPLOADS
    assert [status for status, _ in results] == [202] * UPLOADS
    assert {job["status"] for _, job in results} == {"done"}
    assert len({job["mp3_fid"] for _, job in results}) == UPLOADS
    assert mp3_count == UPLOADS
