"""Prometheus metrics move by the right amounts after a flow: through run-local's wiring, and with the
gateway under gunicorn with two workers, whose numbers must add up whichever worker answers /metrics."""

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest
import requests
from pika.exceptions import ChannelClosedByBroker
from prometheus_client.parser import text_string_to_metric_families

from common.broker import connection_parameters, dead_letter_queue
from tests.servers import ADMIN, ROOT, Client, free_port, served_mongodb_uri, wait_answering


def scrape(url: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of a /metrics page."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def http_count(samples, service, route, status, method="POST") -> float:
    return value(samples, "http_server_request_duration_seconds_count", service=service, method=method,
                 route=route, status=str(status))


def test_the_counters_move_by_what_a_flow_did(stack, stack_env, admin, samples):
    video_queue, mp3_queue = stack_env["VIDEO_QUEUE"], stack_env["MP3_QUEUE"]
    before = scrape(f"{stack.gateway_url}/metrics")

    good, silent = admin.upload(samples["faststart.mp4"]), admin.upload(samples["silent.mp4"])
    assert (good.status_code, silent.status_code) == (202, 202)
    assert admin.wait_final(good.json()["job_id"])["status"] == "done"
    assert admin.wait_final(silent.json()["job_id"])["status"] == "failed"
    assert Client(stack.gateway_url).upload(samples["faststart.mp4"]).status_code == 401
    time.sleep(0.5)  # the consumers settle their messages just after the job is final

    after = scrape(f"{stack.gateway_url}/metrics")
    consumers = scrape(stack.metrics_url)  # what run-local serves on METRICS_PORT: the same process here

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    sizes = samples["faststart.mp4"].stat().st_size + samples["silent.mp4"].stat().st_size
    assert moved("mp3converter_uploads_total") == 2
    assert moved("mp3converter_upload_bytes_total") == sizes
    assert moved("mp3converter_jobs_finished_total", status="done") == 1
    assert moved("mp3converter_jobs_finished_total", status="failed") == 1
    assert moved("mp3converter_conversion_seconds_count") == 1
    assert 0 < moved("mp3converter_conversion_seconds_sum") < 60
    assert moved("mp3converter_consumer_dead_letters_total", queue=video_queue) == 1  # the silent video
    assert moved("mp3converter_consumer_redeliveries_total", queue=video_queue) == 0
    assert http_count(after, "gateway", "/upload", 202) - http_count(before, "gateway", "/upload", 202) == 2
    assert http_count(after, "gateway", "/upload", 401) - http_count(before, "gateway", "/upload", 401) == 1
    assert http_count(after, "auth", "/validate", 200) >= http_count(before, "auth", "/validate", 200)
    assert value(consumers, "mp3converter_jobs_finished_total", status="done") == value(
        after, "mp3converter_jobs_finished_total", status="done")
    # Queue depths, read from the broker: all consumed, one dead letter more, a consumer on each work queue.
    for queue in (video_queue, mp3_queue):
        assert value(after, "mp3converter_queue_messages", queue=queue) == 0
        assert value(after, "mp3converter_queue_consumers", queue=queue) >= 1
    assert value(after, "mp3converter_queue_messages", queue=dead_letter_queue(video_queue)) >= 1


@pytest.fixture
def gunicorn_gateway(stack, stack_env, tmp_path):
    """`python -m gateway` as compose and the manifests run it: gunicorn, two workers, PROMETHEUS_MULTIPROC_DIR
    set. It asks the stack's auth; its queues are its own, so that the stack's converter leaves its messages
    alone."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")
    env = {**os.environ, **stack_env, "MONGODB_URI": served_mongodb_uri(), "GATEWAY_PORT": str(port),
           "HTTP_WORKERS": "2", "HTTP_THREADS": "4",
           "AUTH_SVC_ADDRESS": stack.auth_url, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
           "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".gunicorn", "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".gunicorn"}
    process = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url, process)
        yield url, metrics_dir
    finally:
        process.terminate()
        process.wait(timeout=60)
        connection = pika.BlockingConnection(connection_parameters(stack_env["RABBITMQ_URL"]))
        for queue in (env["VIDEO_QUEUE"], env["MP3_QUEUE"]):
            for name in (queue, dead_letter_queue(queue)):
                connection.channel().queue_delete(name)
        connection.close()


def workers_that_served(metrics_dir: Path) -> set[str]:
    """The pids of the processes that timed a request (each writes its own file)."""
    return {Path(path).stem.rsplit("_", 1)[1] for path in glob.glob(str(metrics_dir / "histogram_*.db"))}


def test_under_gunicorn_the_workers_numbers_add_up(gunicorn_gateway, samples):
    url, metrics_dir = gunicorn_gateway
    assert not (metrics_dir / "counter_1.db").exists(), "the server starts from an empty folder"
    waited = http_count(scrape(f"{url}/metrics"), "gateway", "/healthz", 200, method="GET")  # the fixture's
    # Separate connections, so that both workers take some: until each has timed at least one request.
    served = 0
    while len(workers_that_served(metrics_dir)) < 2:
        assert served < 500, "one worker took every connection"
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        served += 1
    token = Client(url)
    assert token.login(*ADMIN).status_code == 200
    uploads = 3
    for _ in range(uploads):
        client = Client(url, token.token)  # a new session each time: a new connection, any worker
        assert client.upload(samples["faststart.mp4"]).status_code == 202

    # Whichever worker answers, the numbers are the sum over both.
    for _ in range(4):
        samples_now = scrape(f"{url}/metrics")
        assert http_count(samples_now, "gateway", "/healthz", 200, method="GET") == waited + served
        assert http_count(samples_now, "gateway", "/upload", 202) == uploads
        assert value(samples_now, "mp3converter_uploads_total") == uploads
        size = samples["faststart.mp4"].stat().st_size
        assert value(samples_now, "mp3converter_upload_bytes_total") == uploads * size


def test_a_scrape_never_disturbs_publishing(stack_env):
    """The depths are read on a connection of their own: a queue that does not exist (its passive
    declare closes the channel it is asked on) or a scrape while uploads publish leaves the publishing
    connection as it was, and a scrape never waits for a publish."""
    import threading

    from common.broker import Publisher

    video_queue = f"{stack_env['VIDEO_QUEUE']}-probed"  # nobody consumes it
    publisher = Publisher(stack_env["RABBITMQ_URL"], (video_queue,))
    try:
        publisher.publish(video_queue, {"job_id": "before the scrape"})
        publishing = publisher._connection

        with pytest.raises(ChannelClosedByBroker):  # 404
            publisher.queue_counts(f"{video_queue}.no-such-queue")
        assert publisher.queue_counts(video_queue)[0] >= 1

        assert publisher._connection is publishing and publishing.is_open
        publisher.publish(video_queue, {"job_id": "after the scrape"})
        assert publisher._connection is publishing

        scraped = threading.Event()
        with publisher._lock:  # a publish in progress
            threading.Thread(target=lambda: (publisher.queue_counts(video_queue), scraped.set()), daemon=True).start()
            assert scraped.wait(10), "the scrape waited for the publish"
    finally:
        publisher.close()
        channel = pika.BlockingConnection(connection_parameters(stack_env["RABBITMQ_URL"])).channel()
        for queue in (video_queue, dead_letter_queue(video_queue)):
            channel.queue_delete(queue)
        channel.connection.close()
