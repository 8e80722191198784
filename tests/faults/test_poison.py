"""Messages that can never succeed are dead-lettered once, their jobs fail with a reason, and the
converter goes on with the next message."""

from urllib.parse import urlparse

import pika

from common import storage
from common.broker import PERSISTENT, connection_parameters, dead_letter_queue, encode
from common.jobs import Jobs
from runlocal import mongo
from tests.faults.conftest import InProcessConverter, TCPProxy, wait_until
from tests.servers import queue_depth


def publish_raw(env, body: bytes) -> None:
    connection = pika.BlockingConnection(connection_parameters(env["RABBITMQ_URL"]))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", env["VIDEO_QUEUE"], body, PERSISTENT, mandatory=True)
    connection.close()


def job_with_video(db, data: bytes, name: str) -> dict:
    video_fid = storage.bucket(db, storage.VIDEOS).upload_from_stream(name, data)
    return Jobs(db).create("admin@example.com", name, video_fid)


def message_for(job) -> bytes:
    return encode({"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": None,
                   "owner": job["owner"]})


def test_poison_messages_are_dead_lettered_and_the_next_job_still_converts(fault_env, fault_stack, samples):
    db = mongo.connect(fault_env["MONGODB_URI"], fault_env["MONGODB_DB"])
    jobs = Jobs(db)
    missing_video = job_with_video(db, samples["faststart.mp4"].read_bytes(), "gone.mp4")
    storage.bucket(db, storage.VIDEOS).delete(missing_video["video_fid"])
    not_a_video = job_with_video(db, b"%PDF-1.7 definitely not a video" * 100, "report.mp4")
    truncated = job_with_video(db, samples["truncated.mp4"].read_bytes(), "truncated.mp4")
    poison = {
        "malformed JSON": b"{not json",
        "not an object": b"[1, 2, 3]",
        "job_id not an id": encode({"job_id": "../../etc", "video_fid": "x"}),
        "missing video": message_for(missing_video),
        "not a video": message_for(not_a_video),
        "truncated video": message_for(truncated),
    }
    for body in poison.values():
        publish_raw(fault_env, body)
    # A job deleted before its turn is no poison: acked quietly, neither dead-lettered nor retried.
    publish_raw(fault_env, encode({"job_id": "6b0a7a79263e08cfdd383f3c", "video_fid": "x"}))
    client = fault_stack.client

    with InProcessConverter(fault_env):
        good = client.wait_final(client.upload(samples["video.mkv"]).json()["job_id"], timeout=120)
        dead = dead_letter_queue(fault_env["VIDEO_QUEUE"])
        wait_until(lambda: queue_depth(fault_env, dead) == len(poison), 30, "every poison message dead-lettered")

    assert good["status"] == "done"
    assert queue_depth(fault_env, fault_env["VIDEO_QUEUE"]) == 0
    assert "no longer in storage" in jobs.get(missing_video["_id"])["error"]
    assert "not a video in a supported format" in jobs.get(not_a_video["_id"])["error"]
    assert "truncated" in jobs.get(truncated["_id"])["error"]
    for job in (missing_video, not_a_video, truncated):
        assert jobs.get(job["_id"])["status"] == "failed"
        assert jobs.get(job["_id"])["attempts"] == 1, "a hopeless file must not be retried"


def test_a_file_that_kills_its_converter_every_time_fails_after_max_attempts(fault_env, fault_stack, slow_video):
    """A crash loop: every delivery dies mid-conversion (its connection cut); the bound holds."""
    client = fault_stack.client
    job_id = client.upload(slow_video).json()["job_id"]
    jobs = Jobs(mongo.connect(fault_env["MONGODB_URI"], fault_env["MONGODB_DB"]))
    attempts = int(fault_env.get("MAX_ATTEMPTS", "3"))
    amqp = urlparse(fault_env["RABBITMQ_URL"])

    for attempt in range(1, attempts + 1):
        proxy = TCPProxy(amqp.hostname, amqp.port or 5672)
        url = fault_env["RABBITMQ_URL"].replace(amqp.netloc, f"{amqp.username}:{amqp.password}@127.0.0.1:{proxy.port}")
        with InProcessConverter(fault_env, rabbitmq_url=url):
            wait_until(lambda a=attempt: jobs.get(job_id)["attempts"] == a and jobs.get(job_id)["progress"] > 0,
                       60, f"delivery {attempt} to be converting")
            proxy.cut()
    with InProcessConverter(fault_env):
        job = client.wait_final(job_id, timeout=60)

    assert job["status"] == "failed"
    assert f"{attempts} attempts" in job["error"]
    assert jobs.get(job_id)["attempts"] == attempts + 1
    assert queue_depth(fault_env, dead_letter_queue(fault_env["VIDEO_QUEUE"])) == 1
