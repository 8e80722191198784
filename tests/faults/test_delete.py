"""DELETE /jobs/<id> of a job that is being converted, on the real broker: the converter notices, kills
ffmpeg, keeps no MP3, and settles the message (acked: neither handed back nor dead-lettered)."""

import logging
import tempfile

import psutil

from common.broker import dead_letter_queue
from runlocal import mongo
from tests.faults.conftest import InProcessConverter, wait_until
from tests.servers import queue_depth


def stored(env) -> dict[str, int]:
    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    return {name: db[name].count_documents({}) for name in
            ("jobs", "videos.files", "videos.chunks", "mp3s.files", "mp3s.chunks")}


def ffmpeg_children() -> list:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


def test_deleting_a_job_while_it_converts_stops_ffmpeg_stores_nothing_and_settles_the_message(
        fault_env, fault_stack, slow_video, samples, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = fault_stack.client

    with caplog.at_level(logging.INFO), InProcessConverter(fault_env) as converter:
        job_id = client.upload(slow_video).json()["job_id"]
        wait_until(lambda: client.job(job_id).json()["progress"] > 0, 60, "the conversion to start")
        assert ffmpeg_children(), "ffmpeg is not running"

        response = client.delete(job_id)

        assert response.status_code == 204
        assert client.job(job_id).status_code == 404
        wait_until(lambda: converter.consumer._work is None, 30, "the converter to settle the message")
        wait_until(lambda: not ffmpeg_children(), 10, "ffmpeg to be gone")
        # Free again: the next upload converts.
        assert client.wait_final(client.upload(samples["faststart.mp4"]).json()["job_id"])["status"] == "done"

    converted = [r for r in caplog.records if r.getMessage() == "converted" and r.__dict__.get("job_id") == job_id]
    assert converted == [], "the deleted job was converted to the end"
    assert any(r.getMessage() == "job deleted; not converting it" and r.__dict__.get("job_id") == job_id
               for r in caplog.records)
    assert queue_depth(fault_env, fault_env["VIDEO_QUEUE"]) == 0
    assert queue_depth(fault_env, dead_letter_queue(fault_env["VIDEO_QUEUE"])) == 0
    # The second job alone (its video goes once its MP3 is announced, a moment after it is done).
    counts = wait_until(lambda: (c := stored(fault_env))["videos.files"] == 0 and c, 5, "the video to go")
    assert (counts["jobs"], counts["mp3s.files"], counts["videos.files"]) == (1, 1, 0)
    assert list(tmp_path.iterdir()) == [], "the stopped conversion left files behind"
