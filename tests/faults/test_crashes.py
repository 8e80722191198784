"""A converter that loses its connection, or is told to stop, mid-conversion: nothing lost, nothing
done twice, nothing left behind."""

import logging
import signal
import tempfile
import time
from urllib.parse import urlparse

from common import storage
from common.jobs import Jobs
from runlocal import mongo
from tests.faults.conftest import InProcessConverter, TCPProxy, wait_until
from tests.servers import queue_depth, ready_run_local


def mp3s_of(env, job_id) -> list:
    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    return list(db[f"{storage.MP3S}.files"].find({"metadata.job_id": job_id}))


def test_a_converter_cut_off_mid_conversion_hands_the_job_to_another(fault_env, fault_stack, slow_video,
                                                                     tmp_path, monkeypatch):
    # The converters of this test are threads of this process: their temp files go here, and only theirs.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    amqp = urlparse(fault_env["RABBITMQ_URL"])
    proxy = TCPProxy(amqp.hostname, amqp.port or 5672)
    via_proxy = fault_env["RABBITMQ_URL"].replace(
        amqp.netloc, f"{amqp.username}:{amqp.password}@127.0.0.1:{proxy.port}")
    client = fault_stack.client

    with InProcessConverter(fault_env, rabbitmq_url=via_proxy):
        job_id = client.upload(slow_video).json()["job_id"]
        wait_until(lambda: client.job(job_id).json()["progress"] > 0, 60, "the first converter to start")
        proxy.cut()
        with InProcessConverter(fault_env):
            job = client.wait_final(job_id, timeout=180)

    assert job["status"] == "done"
    assert [f["_id"] for f in mp3s_of(fault_env, job_id)] == [storage.object_id(job["mp3_fid"])]
    stored = Jobs(mongo.connect(fault_env["MONGODB_URI"], fault_env["MONGODB_DB"])).get(job_id)
    assert stored["attempts"] == 2
    assert list(tmp_path.iterdir()) == [], "a conversion left files behind"


def test_heartbeats_keep_flowing_during_a_long_conversion(fault_env, fault_stack, slow_video, caplog):
    url = fault_env["RABBITMQ_URL"]
    one_second_heartbeat = url + ("&" if "?" in url else "?") + "heartbeat=1"
    client = fault_stack.client

    with caplog.at_level(logging.INFO, logger="common.consumer"), \
            InProcessConverter(fault_env, rabbitmq_url=one_second_heartbeat) as converter:
        started = time.monotonic()
        job = client.wait_final(client.upload(slow_video).json()["job_id"], timeout=180)
        took = time.monotonic() - started
        still_connected = converter.consumer.consuming.is_set()

    assert took > 3, "the conversion must outlast several heartbeat intervals to prove anything"
    assert job["status"] == "done"
    assert still_connected
    assert not [r for r in caplog.records if "connection lost" in r.getMessage()]


def test_sigterm_mid_conversion_hands_the_message_back_and_exits_0(fault_env, slow_video):
    env = {**fault_env, "SHUTDOWN_GRACE_SECONDS": "1"}
    with ready_run_local(env) as (process, client):
        job_id = client.upload(slow_video).json()["job_id"]
        wait_until(lambda: client.job(job_id).json()["progress"] > 0, 60, "the conversion to start")

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        # Not done, so not acked: the video message is back in the queue for the next converter.
        assert queue_depth(env, env["VIDEO_QUEUE"]) == 1
        assert queue_depth(env, env["MP3_QUEUE"]) == 0


def test_sigterm_lets_a_conversion_that_fits_in_the_grace_period_finish(fault_env, slow_video):
    env = {**fault_env, "SHUTDOWN_GRACE_SECONDS": "30"}
    with ready_run_local(env) as (process, client):
        job_id = client.upload(slow_video).json()["job_id"]
        wait_until(lambda: client.job(job_id).json()["progress"] > 0, 60, "the conversion to start")

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        assert '"message": "converted"' in output
        assert queue_depth(env, env["VIDEO_QUEUE"]) == 0
