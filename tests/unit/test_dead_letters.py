"""Nothing waits for ever: whatever step of a handler fails, however unexpectedly, a message that goes to
the dead-letter queue leaves its job final, with a reason its owner reads, and its owner's place free."""

import json
import threading

import pytest
from tenacity import wait_none

from common import storage
from common.consumer import outcome_of
from common.handler import Action, Delivery
from common.jobs import FINAL, Jobs, Status
from common.settings import ConverterSettings, NotificationSettings, load
from converter import handler as converter_module
from converter import streamable
from converter.handler import Converter
from notification.handler import Notifier

OWNER = "alice@example.com"
SETTINGS = dict(rabbitmq_url="amqp://guest:guest@127.0.0.1/", mongodb_uri="mongodb://unused/")


class Injected(Exception):
    """A failure no handler foresees."""


def explode(*_args, **_kwargs):
    raise Injected("injected at this step")


def both_deliveries(handler, job_id: str) -> list:
    """The first delivery and the redelivery, as RabbitMQ makes them, through the consumer's mapping."""
    body = json.dumps({"job_id": job_id, "video_fid": "", "mp3_fid": None, "owner": OWNER}).encode()
    outcomes = []
    for redelivered in (False, True):
        outcomes.append(outcome_of(handler, Delivery(body, redelivered), threading.Event()))
        if outcomes[-1].action is not Action.REQUEUE:
            break
    return outcomes


def queued_job(db, path):
    with path.open("rb") as source:
        video_fid = storage.bucket(db, storage.VIDEOS).upload_from_stream(path.name, source)
    return Jobs(db).create(OWNER, path.name, video_fid)


# Every step of the converter's handler, and what each step calls, except the two that failing a job
# itself relies on (Jobs.get and Jobs.fail: with those down, the message waits, see the last test).
CONVERTER_STEPS = [
    (Jobs, "of_message"), (Jobs, "start_attempt"), (Jobs, "set_progress"), (Jobs, "finish"),
    (Converter, "_convert"), (Converter, "_source"), (Converter, "_open_streamable"), (Converter, "_fetch"),
    (Converter, "_remove_leftovers"), (Converter, "_store"), (Converter, "_drop_video"),
    (Converter, "_announcement"), (Converter, "_settled"), (converter_module, "convert"),
    (streamable, "is_streamable"), (storage, "rereadable"), (converter_module.tempfile, "TemporaryDirectory"),
]


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    for step in (Converter._fetch, Converter._open_streamable, Converter._store, Converter._remove_leftovers):
        monkeypatch.setattr(step.retry, "wait", wait_none())


@pytest.mark.parametrize("name", ["faststart.mp4", "plain.mp4"])  # piped, and through a temp file
@pytest.mark.parametrize(("owner_of_step", "step"), CONVERTER_STEPS, ids=[s for _, s in CONVERTER_STEPS])
def test_an_unexpected_failure_at_any_step_of_the_conversion_leaves_the_job_final(
        memory_db, samples, monkeypatch, owner_of_step, step, name):
    converter = Converter(load(ConverterSettings, **SETTINGS), memory_db)
    job = queued_job(memory_db, samples[name])
    monkeypatch.setattr(owner_of_step, step, explode)

    outcomes = both_deliveries(converter, str(job["_id"]))

    final = Jobs(memory_db).get(job["_id"])
    assert outcomes[-1].action in (Action.REJECT, Action.ACK)
    assert final["status"] in FINAL, f"a failure in {step} left the job {final['status']}"
    assert Jobs(memory_db).count_active(OWNER) == 0
    mp3s = list(memory_db[f"{storage.MP3S}.files"].find())
    if final["status"] == Status.FAILED:
        assert final["error"], "a failed job tells its owner why"
        assert mp3s == []
        assert memory_db[f"{storage.VIDEOS}.files"].count_documents({}) == 0, "a failed job's video goes"
    else:  # the failure came after the MP3 was recorded: the job is done and keeps it
        assert [f["_id"] for f in mp3s] == [final["mp3_fid"]]


def test_the_crafted_mp4_fails_its_job_whichever_unexpected_error_it_causes(memory_db, samples, monkeypatch):
    """Any error the sniffing might raise on a hostile file, not only the one that was found."""
    converter = Converter(load(ConverterSettings, **SETTINGS), memory_db)
    job = queued_job(memory_db, samples["faststart.mp4"])
    monkeypatch.setattr(streamable, "_moov_first", lambda video: int("not a size"))

    outcomes = both_deliveries(converter, str(job["_id"]))

    final = Jobs(memory_db).get(job["_id"])
    assert [o.action for o in outcomes] == [Action.REQUEUE, Action.REJECT]
    assert (final["status"], final["error"]) == ("failed", "Failed twice with an unexpected error (ValueError).")


def test_while_storage_cannot_fail_the_job_its_message_is_kept(memory_db, samples, monkeypatch):
    from pymongo.errors import AutoReconnect

    converter = Converter(load(ConverterSettings, **SETTINGS), memory_db)
    job = queued_job(memory_db, samples["faststart.mp4"])
    monkeypatch.setattr(converter_module, "convert", explode)
    monkeypatch.setattr(Jobs, "fail", lambda *args: (_ for _ in ()).throw(AutoReconnect("storage away")))

    outcomes = both_deliveries(converter, str(job["_id"]))

    assert outcomes[-1].action is Action.REQUEUE  # not dead-lettered with its job still converting
    assert Jobs(memory_db).get(job["_id"])["status"] == Status.CONVERTING


NOTIFICATION_STEPS = [(Jobs, "of_message"), (Jobs, "claim_notification"), (Notifier, "_announce"),
                      (Notifier, "_mail")]


@pytest.mark.parametrize(("owner_of_step", "step"), NOTIFICATION_STEPS, ids=[s for _, s in NOTIFICATION_STEPS])
def test_an_unexpected_failure_at_any_step_of_the_notification_leaves_the_job_done_and_unclaimed(
        memory_db, monkeypatch, owner_of_step, step):
    jobs = Jobs(memory_db)
    job = jobs.create(OWNER, "clip.mp4", storage.object_id("6b0a7a79263e08cfdd383f3c"))
    jobs.start_attempt(job["_id"])
    jobs.finish(job["_id"], storage.bucket(memory_db, storage.MP3S).upload_from_stream("clip.mp3", b"mp3"))
    settings = load(NotificationSettings, **SETTINGS, smtp_host="127.0.0.1")
    notifier = Notifier(settings, memory_db)
    monkeypatch.setattr(owner_of_step, step, explode)

    outcomes = both_deliveries(notifier, str(job["_id"]))

    final = jobs.get(job["_id"])
    assert [o.action for o in outcomes] == [Action.REQUEUE, Action.REJECT]
    assert final["status"] == Status.DONE and final["notified_at"] is None  # it may be sent again from there
