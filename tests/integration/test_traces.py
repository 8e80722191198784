"""One upload is one trace across the four services and RabbitMQ, as run-local wires them.

The spans are read with the SDK's in-memory exporter (added to every service's TracerProvider of this
process, runlocal.traces), then as a person would get them: printed by `OTEL_TRACES_EXPORTER=console scripts/run-local`,
and sent over OTLP/HTTP to a receiver that decodes the protobuf as Jaeger does.
"""

import gzip
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common.broker import Publisher
from common.consumer import Consumer
from common.handler import Outcome
from common.logs import JSONFormatter
from common.settings import ConverterSettings, GatewaySettings, load
from runlocal import traces
from runlocal.throwaway import environment
from tests.integration.test_flow import create_user
from tests.servers import Client, free_port, ready_run_local

SERVICES = {"gateway", "auth", "converter", "notification"}


class Lines(logging.Handler):
    """The JSON lines the services log, formatted where they are logged (in the thread and trace of the call)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JSONFormatter())
        self.entries = []

    def emit(self, record):
        self.entries.append(json.loads(self.format(record)))


@pytest.fixture
def memory_spans(stack):
    exporter = InMemorySpanExporter()
    for provider in traces.providers():
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processors stay on the providers; a shut-down exporter keeps nothing


@pytest.fixture
def fresh_client(stack, stack_env) -> Client:
    """A user whose token the gateway has never validated, so that the upload's trace shows the call to auth."""
    email = f"tracer{time.monotonic_ns()}@example.com"
    assert create_user(stack_env, email, "tracer-password").returncode == 0
    client = Client(stack.gateway_url)
    assert client.login(email, "tracer-password").status_code == 200
    return client


def service(span) -> str:
    return span.resource.attributes["service.name"]


def wait_for(exporter, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = exporter.get_finished_spans()
        if predicate(spans):
            return spans
        time.sleep(0.1)
    raise AssertionError(f"spans never matched: {[(service(s), s.name) for s in exporter.get_finished_spans()]}")


def test_one_upload_is_one_trace_across_the_four_services(stack_env, samples, memory_spans, fresh_client, caplog):
    caplog.set_level(logging.INFO)
    lines = Lines()
    logging.getLogger().addHandler(lines)
    try:
        upload = fresh_client.upload(samples["faststart.mp4"])
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["job_id"]
        assert fresh_client.wait_final(job_id)["status"] == "done"
        video, mp3 = stack_env["VIDEO_QUEUE"], stack_env["MP3_QUEUE"]
        spans = wait_for(memory_spans, lambda spans: any(s.name == f"{mp3} process" for s in spans))
    finally:
        logging.getLogger().removeHandler(lines)

    [root] = [s for s in spans if s.name == "POST /upload"]
    trace = [s for s in spans if s.context.trace_id == root.context.trace_id]
    assert {service(s) for s in trace} == SERVICES
    assert root.parent is None and root.kind is SpanKind.SERVER and service(root) == "gateway"
    assert root.attributes["job_id"] == job_id
    by_id = {s.context.span_id: s for s in trace}

    def only(name, kind=None):
        found = [s for s in trace if s.name == name and (kind is None or s.kind is kind)]
        assert len(found) == 1, f"{len(found)} spans {name!r} in the trace: {[(service(s), s.name) for s in trace]}"
        return found[0]

    def parent(span):
        return by_id[span.parent.span_id]

    # The gateway asks auth who the caller is: auth's server span is the child of the gateway's call.
    validate = only("POST /validate", SpanKind.SERVER)
    assert service(validate) == "auth"
    call = parent(validate)
    assert (service(call), call.kind, parent(call)) == ("gateway", SpanKind.CLIENT, root)
    # It stores the video in GridFS and publishes the job, under the request.
    assert parent(only("GridFS upload videos")) == root
    send_video = only(f"{video} send", SpanKind.PRODUCER)
    assert parent(send_video) == root
    # Across the queue: the converter's work is the child of the publish.
    process_video = only(f"{video} process", SpanKind.CONSUMER)
    assert (service(process_video), parent(process_video)) == ("converter", send_video)
    assert process_video.attributes["job_id"] == job_id
    # A faststart MP4 is streamed from GridFS into ffmpeg (no "GridFS fetch videos" into a temp file).
    steps = [only("GridFS open videos"), only("ffmpeg"), only("GridFS upload mp3s"), only(f"{mp3} send")]
    assert all(service(step) == "converter" and parent(step) == process_video for step in steps)
    assert [step.start_time for step in steps] == sorted(step.start_time for step in steps)
    # And across the mp3 queue to the notification.
    process_mp3 = only(f"{mp3} process", SpanKind.CONSUMER)
    assert (service(process_mp3), parent(process_mp3)) == ("notification", steps[-1])
    assert process_mp3.attributes["job_id"] == job_id
    # (a consumer may start before the publish span ends: that waits for the broker's confirm)
    assert process_video.start_time >= send_video.start_time and process_mp3.start_time >= steps[-1].start_time

    # The log lines of that work carry the trace: find them in the logs by job_id, then the trace by trace_id.
    trace_id = f"{root.context.trace_id:032x}"
    logged = {entry["message"]: entry for entry in lines.entries if entry.get("job_id") == job_id}
    for message in ("upload queued", "converting", "converted", "mp3 ready"):
        assert logged[message]["trace_id"] == trace_id, message
        assert int(logged[message]["span_id"], 16) in by_id, message


def test_a_redelivery_starts_its_own_trace_linked_to_the_original(servers, stack_env):
    """A message handed back (a crash, a lost connection) comes again: its second processing is a trace of its
    own, linked to the publish, so that the upload's trace is not stretched over the wait."""
    queue = stack_env["VIDEO_QUEUE"] + ".redelivery"
    env = {**stack_env, "VIDEO_QUEUE": queue}
    traces.install()  # as run-local does: the spans of the publish and the consumer go to their service
    with environment(env):
        provider = traces.provider_for(load(ConverterSettings))
        gateway_provider = traces.provider_for(load(GatewaySettings, auth_svc_address="http://127.0.0.1:1"))
    exporter = InMemorySpanExporter()
    for each in (provider, gateway_provider):
        each.add_span_processor(SimpleSpanProcessor(exporter))
    deliveries = []

    def handler(delivery, _cancel):
        deliveries.append(delivery.redelivered)
        if len(deliveries) == 1:
            raise RuntimeError("the first attempt dies")
        return Outcome.ack()

    publisher = Publisher(env["RABBITMQ_URL"], (queue,))
    consumer = Consumer(url=env["RABBITMQ_URL"], queue=queue, queues=(queue,), handler=handler,
                        tracer_provider=provider)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    try:
        with gateway_provider.get_tracer("test").start_as_current_span("POST /upload"):
            publisher.publish(queue, {"job_id": "j1"})
        thread.start()
        spans = wait_for(exporter, lambda spans: sum(s.name == f"{queue} process" for s in spans) == 2)
    finally:
        stop.set()
        thread.join(timeout=30)
        channel = publisher._open_channel()
        channel.queue_delete(queue)
        channel.queue_delete(queue + ".dead")
        publisher.close()
        exporter.shutdown()

    assert deliveries == [False, True]
    [send] = [s for s in spans if s.name == f"{queue} send"]
    first, second = sorted((s for s in spans if s.name == f"{queue} process"), key=lambda s: s.start_time)
    assert first.context.trace_id == send.context.trace_id and first.parent.span_id == send.context.span_id
    assert first.attributes["mp3converter.outcome"] == "requeue"
    assert second.context.trace_id != send.context.trace_id and second.parent is None
    assert [link.context.span_id for link in second.links] == [send.context.span_id]
    assert second.attributes["messaging.rabbitmq.redelivered"] is True
    assert second.attributes["mp3converter.outcome"] == "ack"


def read_lines(process, into: list):
    for line in process.stdout:
        into.append(line)


def one_trace_of_four_services(spans: list[tuple[str, str, str]]) -> set:
    """spans: (trace_id, service, name). The services of the trace that holds the upload."""
    upload_traces = {trace_id for trace_id, _service, name in spans if name == "POST /upload"}
    assert len(upload_traces) == 1, spans
    [trace_id] = upload_traces
    return {svc for tid, svc, _name in spans if tid == trace_id}


def services_of_upload_trace(spans: list[tuple[str, str, str]]) -> set:
    upload_traces = {trace_id for trace_id, _service, name in spans if name == "POST /upload"}
    return {svc for tid, svc, _name in spans if tid in upload_traces} if len(upload_traces) == 1 else set()


def upload_and_wait(client, samples):
    upload = client.upload(samples["faststart.mp4"])
    assert upload.status_code == 202, upload.text
    assert client.wait_final(upload.json()["job_id"])["status"] == "done"


def test_run_local_prints_the_spans_as_json_lines_with_the_console_exporter(stack_env, samples):
    env = {**stack_env, "OTEL_TRACES_EXPORTER": "console", "MYSQL_DB": stack_env["MYSQL_DB"] + "_console",
           "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".console", "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".console"}
    with ready_run_local(env) as (process, client):
        output: list[str] = []
        threading.Thread(target=read_lines, args=(process, output), daemon=True).start()
        upload_and_wait(client, samples)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            spans = [json.loads(line) for line in list(output) if line.startswith('{"name"')]
            if any(span["name"].endswith(".console process") and span["kind"] == "SpanKind.CONSUMER"
                   and span["resource"]["attributes"]["service.name"] == "notification" for span in spans):
                break
            time.sleep(0.2)
    assert spans, "no span printed"
    # The SDK's JSON writes ids as 0x-prefixed hex; the logs and Jaeger without the prefix.
    found = [(s["context"]["trace_id"].removeprefix("0x"), s["resource"]["attributes"]["service.name"], s["name"])
             for s in spans]
    assert one_trace_of_four_services(found) == SERVICES
    # The log lines are JSON lines too, and those inside the trace carry its id.
    logs = [json.loads(line) for line in output if line.startswith('{"time"')]
    [queued] = [entry for entry in logs if entry["message"] == "upload queued"]
    assert queued["trace_id"] in {trace_id for trace_id, _svc, name in found if name == "POST /upload"}


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint as Jaeger's: POST /v1/traces with an ExportTraceServiceRequest in protobuf."""

    spans: list = []
    paths: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Receiver.paths.append(self.path)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    Receiver.spans.append((span.trace_id.hex(), attributes["service.name"], span.name))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_run_local_sends_the_spans_over_otlp(stack_env, samples):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**stack_env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
           "MYSQL_DB": stack_env["MYSQL_DB"] + "_otlp", "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".otlp",
           "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".otlp"}
    try:
        with ready_run_local(env) as (process, client):
            threading.Thread(target=read_lines, args=(process, []), daemon=True).start()
            upload_and_wait(client, samples)
            deadline = time.monotonic() + 30
            # Each service exports its own batches: wait until all four have sent theirs of the upload.
            while time.monotonic() < deadline and services_of_upload_trace(Receiver.spans) != SERVICES:
                time.sleep(0.2)
    finally:
        server.shutdown()
    assert set(Receiver.paths) == {"/v1/traces"}
    assert one_trace_of_four_services(Receiver.spans) == SERVICES
