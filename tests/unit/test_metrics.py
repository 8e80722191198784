"""The gateway's GET /metrics without servers: request timing by route (never by id), and the queue depths
read from the broker at scrape time, which a broker outage leaves out instead of failing the scrape."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.settings import GatewaySettings, load
from gateway.app import create_app

pytestmark = pytest.mark.usefixtures("clean_env")

VIDEO, MP3 = "video-metrics", "mp3-metrics"


class NoAuth:
    def validate(self, _token):
        return None


@pytest.fixture
def client(memory_db, fake_publisher):
    settings = load(GatewaySettings, rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/%2F", mongodb_uri="mongodb://unused/",
                    auth_svc_address="http://127.0.0.1:5000", video_queue=VIDEO, mp3_queue=MP3)
    return create_app(settings, db=memory_db, publisher=fake_publisher, auth=NoAuth()).test_client()


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def count(samples, route, status, method="GET") -> float:
    labels = {"service": "gateway", "method": method, "route": route, "status": str(status)}
    return samples.get(("http_server_request_duration_seconds_count", tuple(sorted(labels.items()))), 0.0)


def test_requests_are_timed_by_route_and_status_not_by_id(client):
    before = scrape(client)
    for job_id in ("a" * 24, "b" * 24, "c" * 24):
        assert client.get(f"/jobs/{job_id}").status_code == 401
    assert client.get("/no/such/path/1").status_code == 404
    assert client.get("/no/such/path/2").status_code == 404
    after = scrape(client)
    assert count(after, "/jobs/<job_id>", 401) - count(before, "/jobs/<job_id>", 401) == 3
    assert count(after, "unmatched", 404) - count(before, "unmatched", 404) == 2
    assert not [key for key in after if any("aaaa" in value or "such" in value for _label, value in key[1])]


def test_queue_depths_come_from_the_broker_at_scrape_time(client, fake_publisher):
    fake_publisher.depths = {VIDEO: 7, MP3: 0, f"{VIDEO}.dead": 2}
    fake_publisher.consumers = {VIDEO: 3, MP3: 1}
    samples = scrape(client)
    depths = {dict(labels)["queue"]: value for (name, labels), value in samples.items()
              if name == "mp3converter_queue_messages"}
    assert depths == {VIDEO: 7, MP3: 0, f"{VIDEO}.dead": 2, f"{MP3}.dead": 0}
    assert samples[("mp3converter_queue_consumers", (("queue", VIDEO),))] == 3

    fake_publisher.depths[VIDEO] = 1
    assert scrape(client)[("mp3converter_queue_messages", (("queue", VIDEO),))] == 1


def test_a_broker_outage_leaves_the_depths_out_and_the_rest_in(client, fake_publisher):
    fake_publisher.fail = True
    samples = scrape(client)
    assert not [name for name, _labels in samples if name.startswith("mp3converter_queue_")]
    assert ("mp3converter_uploads_total", ()) in samples
