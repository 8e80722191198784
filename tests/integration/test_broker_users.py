"""The RabbitMQ users of compose and Kubernetes (init/rabbitmq-definitions.sh), on the real broker.

The script writes the definitions from a .env's variables, as it does in the rabbitmq container; they
are imported into a throwaway virtual host of the local RabbitMQ with `rabbitmqctl import_definitions`
(RabbitMQ's own definitions import, the one `load_definitions` runs at boot). Then each service does
what it does, with its own user and the code it runs: the gateway publishes a video, the converter
consumes it and publishes an MP3, notification consumes that. And each is refused what it has no
business doing. The users and the virtual host are removed afterwards.
"""

import json
import os
import secrets
import shutil
import subprocess
import threading
import urllib.parse
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from common.broker import (
    DEAD_LETTER_EXCHANGE,
    PERSISTENT,
    Publisher,
    dead_letter_queue,
    declare_topology,
    queue_arguments,
)
from common.consumer import Consumer
from common.handler import Outcome
from common.queue_migration import declares
from tests.servers import consuming

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "init/rabbitmq-definitions.sh"
CONF = ROOT / "init/rabbitmq.conf"
SERVICES = ("GATEWAY", "CONVERTER", "NOTIFICATION")
TAG = secrets.token_hex(4)


def rabbitmqctl(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def broker_admin_tool(servers):
    if shutil.which("rabbitmqctl") is None:
        reason = "needs rabbitmqctl for the RabbitMQ of RABBITMQ_URL (to import definitions)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def definitions_env(**overrides) -> dict:
    env = {
        "VIDEO_QUEUE": f"users.video.{TAG}", "MP3_QUEUE": f"users.mp3.{TAG}",
        "RABBITMQ_USER": f"admin-{TAG}", "RABBITMQ_PASSWORD": secrets.token_urlsafe(24),
    }  # fmt: skip
    for service in SERVICES:
        env[f"RABBITMQ_{service}_USER"] = f"{service.lower()}-{TAG}"
        env[f"RABBITMQ_{service}_PASSWORD"] = secrets.token_urlsafe(24)
    return {**env, **overrides}


def write_definitions(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the script as the container does, with /tmp/... redirected to tmp_path; it then runs `true`."""
    script = tmp_path / "rabbitmq-definitions.sh"
    script.write_text(SCRIPT.read_text().replace("/tmp/rabbitmq-definitions.json", str(tmp_path / "definitions.json")))
    return subprocess.run(["sh", str(script), "true"], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


def in_vhost(definitions: dict, vhost: str) -> dict:
    """The same definitions in another virtual host than "/" (users are broker-wide, the rest per vhost)."""
    moved = json.loads(json.dumps(definitions))
    for key in ("vhosts", "permissions", "queues", "exchanges", "bindings"):
        for item in moved[key]:
            item["vhost" if key != "vhosts" else "name"] = vhost
    return moved


@pytest.fixture(scope="module")
def broker(servers, broker_admin_tool, tmp_path_factory):
    """{name: amqp URL with that user's login, in a virtual host loaded with the definitions} and the env."""
    env = definitions_env()
    folder = tmp_path_factory.mktemp("definitions")
    result = write_definitions(env, folder)
    assert result.returncode == 0, result.stderr
    vhost = f"users-{TAG}"
    definitions = in_vhost(json.loads((folder / "definitions.json").read_text()), vhost)
    imported = rabbitmqctl("import_definitions", stdin=json.dumps(definitions))  # from standard input
    try:
        assert imported.returncode == 0, imported.stdout + imported.stderr
        amqp = urllib.parse.urlparse(servers["RABBITMQ_URL"])
        where = f"{amqp.hostname}:{amqp.port or 5672}/{urllib.parse.quote(vhost, safe='')}"
        urls = {"admin": f"amqp://{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}@{where}"}
        for service in SERVICES:
            user, password = env[f"RABBITMQ_{service}_USER"], env[f"RABBITMQ_{service}_PASSWORD"]
            urls[service.lower()] = f"amqp://{user}:{password}@{where}"
        yield urls, env
    finally:
        for user in [env["RABBITMQ_USER"], *(env[f"RABBITMQ_{s}_USER"] for s in SERVICES)]:
            rabbitmqctl("delete_user", user)
        rabbitmqctl("delete_vhost", vhost)


def channel(url: str):
    return pika.BlockingConnection(pika.URLParameters(url)).channel()


def refused(operation) -> bool:
    try:
        operation()
    except ChannelClosedByBroker as error:
        return error.reply_code == 403
    return False


def test_the_definitions_are_the_topology_common_broker_declares(broker):
    urls, env = broker
    admin = channel(urls["admin"])
    queues = (env["VIDEO_QUEUE"], env["MP3_QUEUE"])
    # Declared by the broker at load: each queue with its dead-letter queue, already there.
    for queue in queues:
        assert admin.queue_declare(queue, passive=True).method.queue == queue
        assert admin.queue_declare(dead_letter_queue(queue), passive=True)
    # And exactly as common.broker declares them: a declaration with other arguments would be refused.
    declare_topology(admin, queues, prioritised=(env["VIDEO_QUEUE"],))
    assert declares(admin.connection, env["VIDEO_QUEUE"], queue_arguments(env["VIDEO_QUEUE"], prioritised=True))
    admin.connection.close()


def test_each_service_does_its_work_with_its_own_user(broker):
    urls, env = broker
    video, mp3 = env["VIDEO_QUEUE"], env["MP3_QUEUE"]
    delivered = threading.Event()
    stop = threading.Event()

    def convert(delivery, _cancel):
        return Outcome.ack((mp3, json.loads(delivery.body)))

    def notify(delivery, _cancel):
        delivered.set()
        return Outcome.ack()

    converter = Consumer(url=urls["converter"], queue=video, queues=(video, mp3), handler=convert, prioritised=True)
    notification = Consumer(url=urls["notification"], queue=mp3, queues=(mp3,), handler=notify)
    threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in (converter, notification)]
    for thread in threads:
        thread.start()
    try:
        assert converter.consuming.wait(30) and notification.consuming.wait(30), "a consumer was refused"
        publisher = Publisher(urls["gateway"], (video,), prioritised=(video,))
        publisher.publish(video, {"job_id": "users-test"})
        assert publisher.consumer_count(mp3) == 1  # the gateway's readiness check, passive
        publisher.close()
        assert delivered.wait(30), "the message did not go gateway -> converter -> notification"
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@pytest.mark.parametrize(
    ("service", "what"),
    [
        ("gateway", "consume the video queue"),
        ("gateway", "declare the mp3 queue"),
        ("notification", "publish a video"),
        ("converter", "consume the mp3 queue"),
        ("converter", "declare another queue"),
        ("notification", "purge the video queue"),
        ("gateway", "create an exchange"),
    ],
)
def test_a_service_is_refused_what_is_not_its_work(broker, service, what):
    """(RabbitMQ ties deleting a queue to the permission that declares it: a service could delete its own.)"""
    urls, env = broker
    video, mp3 = env["VIDEO_QUEUE"], env["MP3_QUEUE"]
    operations = {
        "consume the video queue": lambda ch: ch.basic_consume(video, lambda *_: None),
        "consume the mp3 queue": lambda ch: ch.basic_consume(mp3, lambda *_: None),
        "declare the mp3 queue": lambda ch: declare_topology(ch, (mp3,)),
        "declare another queue": lambda ch: ch.queue_declare(f"other.{TAG}", durable=True),
        "publish a video": lambda ch: (ch.confirm_delivery(), ch.basic_publish("", video, b"{}", mandatory=True)),
        "purge the video queue": lambda ch: ch.queue_purge(video),
        "create an exchange": lambda ch: ch.exchange_declare(f"other.{TAG}", exchange_type="fanout"),
    }
    ch = channel(urls[service])
    try:
        assert refused(lambda: operations[what](ch)), f"{service} may {what}"
    finally:
        if ch.connection.is_open:
            ch.connection.close()


def test_dead_letters_need_no_permission_of_the_consumer(broker):
    """A message the converter rejects ends in <video>.dead: the broker moves it, not the user."""
    urls, env = broker
    video = env["VIDEO_QUEUE"]
    admin = channel(urls["admin"])
    admin.confirm_delivery()
    admin.basic_publish("", video, b'{"job_id": "poison"}', mandatory=True)
    ch = channel(urls["converter"])
    method, _properties, _body = next(ch.consume(video, inactivity_timeout=10))
    assert method is not None, "the converter got nothing"
    ch.basic_reject(method.delivery_tag, requeue=False)
    ch.cancel()
    ch.connection.close()
    deadline_checks = 50
    while deadline_checks and admin.queue_declare(dead_letter_queue(video), passive=True).method.message_count == 0:
        admin.connection.sleep(0.1)
        deadline_checks -= 1
    assert admin.queue_declare(dead_letter_queue(video), passive=True).method.message_count == 1
    admin.connection.close()


def test_the_converter_may_move_a_video_queue_from_before_priorities_over(broker):
    """A broker whose data predates the priority queue keeps the old one; the converter's user rebuilds it."""
    urls, env = broker
    video = env["VIDEO_QUEUE"]
    admin = channel(urls["admin"])
    admin.queue_delete(video)
    admin.queue_declare(video, durable=True, arguments=queue_arguments(video, prioritised=False))
    admin.confirm_delivery()
    admin.basic_publish("", video, b'{"job_id": "from-before"}', PERSISTENT, mandatory=True)
    Publisher(urls["gateway"], (video,), prioritised=(video,)).publish(video, {"job_id": "meanwhile"}, priority=5)
    got = []
    both = threading.Event()

    def convert(delivery, _cancel):
        got.append(json.loads(delivery.body)["job_id"])
        if len(got) == 2:
            both.set()
        return Outcome.ack()

    converter = Consumer(url=urls["converter"], queue=video, queues=(video,), handler=convert, prioritised=True)
    with consuming(converter):
        assert both.wait(30), f"the converter got {got}"
    assert sorted(got) == ["from-before", "meanwhile"]
    assert declares(admin.connection, video, queue_arguments(video, prioritised=True))
    admin.connection.close()


def test_the_broker_loads_the_file_the_script_writes():
    written = [line for line in SCRIPT.read_text().splitlines() if line.startswith("DEFINITIONS=")]
    assert written and written[0].split("=", 1)[1].split()[0] in CONF.read_text()
    assert f"DEAD_LETTER={DEAD_LETTER_EXCHANGE} " in SCRIPT.read_text()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"RABBITMQ_GATEWAY_PASSWORD": ""}, "RABBITMQ_GATEWAY_PASSWORD is empty or missing: run scripts/init-env"),
        ({"RABBITMQ_CONVERTER_USER": "same"}, "RABBITMQ_CONVERTER_USER is 'same', the name of another user"),
        ({"MP3_QUEUE": "same", "VIDEO_QUEUE": "same"}, "VIDEO_QUEUE and MP3_QUEUE are both 'same'"),
    ],
    ids=["empty-password", "shared-user", "one-queue"],
)
def test_bad_variables_stop_the_broker_with_what_to_do(overrides, message, tmp_path):
    env = definitions_env(**overrides)
    if overrides.get("RABBITMQ_CONVERTER_USER") == "same":
        env["RABBITMQ_USER"] = "same"
    result = write_definitions(env, tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert not (tmp_path / "definitions.json").exists(), "nothing is written when a variable is wrong"


def test_the_gateway_may_read_the_depth_of_every_queue_it_reports(broker):
    """GET /metrics reports each queue's depth (common.metrics.QueueDepths) from a passive declare, made
    with the gateway's own user, which may declare only the video queue: RabbitMQ asks no permission
    for a passive declare, so all four are read, the mp3 queues included."""
    urls, env = broker
    queues = [env["VIDEO_QUEUE"], env["MP3_QUEUE"]]
    admin = channel(urls["admin"])
    admin.confirm_delivery()
    for queue in [*queues, *map(dead_letter_queue, queues)]:
        admin.queue_purge(queue)  # what other tests left
        admin.basic_publish("", queue, b'{"job_id": "depth"}', mandatory=True)
    admin.connection.close()
    publisher = Publisher(urls["gateway"], (env["VIDEO_QUEUE"],), prioritised=(env["VIDEO_QUEUE"],))  # as the gateway
    try:
        depths = {queue: publisher.queue_counts(queue)[0] for queue in [*queues, *map(dead_letter_queue, queues)]}
    finally:
        publisher.close()
        purge = channel(urls["admin"])
        for queue in depths:
            purge.queue_purge(queue)
        purge.connection.close()
    assert depths == dict.fromkeys(depths, 1)
