"""The notification handler: one log line and at most one e-mail per finished job."""

import email
import email.policy
import json
import logging
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from common import storage
from common.consumer import outcome_of
from common.handler import Action, Delivery
from common.jobs import Jobs
from common.removal import JobDeletion
from common.settings import NotificationSettings, load
from notification.handler import Notifier

BASE = dict(rabbitmq_url="amqp://guest:guest@127.0.0.1/", mongodb_uri="mongodb://unused/", public_url="http://converter.test:8080")


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, _server, _session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd cannot listen on port 0: take a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, inbox
    controller.stop()


def done_job(db, owner="alice@example.com"):
    jobs = Jobs(db)
    job = jobs.create(owner, "clip.mp4", storage.object_id("6b0a7a79263e08cfdd383f3c"))
    mp3_fid = storage.bucket(db, storage.MP3S).upload_from_stream("clip.mp3", b"mp3")
    jobs.start_attempt(job["_id"])
    jobs.finish(job["_id"], mp3_fid)
    return jobs.get(job["_id"])


def message(job) -> Delivery:
    body = {"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": str(job["mp3_fid"]),
            "owner": job["owner"]}
    return Delivery(json.dumps(body).encode(), False)


def test_a_finished_job_gets_one_structured_log_line_with_its_download_url(memory_db, caplog):
    notifier = Notifier(load(NotificationSettings, **BASE), memory_db)
    job = done_job(memory_db)

    with caplog.at_level(logging.INFO, logger="notification.handler"):
        outcome = outcome_of(notifier, message(job), threading.Event())

    assert outcome.action is Action.ACK
    [record] = [r for r in caplog.records if r.getMessage() == "mp3 ready"]
    assert record.job_id == str(job["_id"])
    assert record.owner == "alice@example.com"
    assert record.mp3_fid == str(job["mp3_fid"])
    assert record.download_url == f"http://converter.test:8080/download?fid={job['mp3_fid']}"
    assert Jobs(memory_db).get(job["_id"])["notified_at"] is not None


def test_a_redelivered_message_does_not_notify_twice(memory_db, caplog, smtp_server):
    controller, inbox = smtp_server
    settings = load(NotificationSettings, **BASE, smtp_host="127.0.0.1", smtp_port=controller.port)
    notifier = Notifier(settings, memory_db)
    job = done_job(memory_db)

    with caplog.at_level(logging.INFO, logger="notification.handler"):
        outcomes = [outcome_of(notifier, message(job), threading.Event()) for _ in range(3)]

    assert [o.action for o in outcomes] == [Action.ACK] * 3
    assert len([r for r in caplog.records if r.getMessage() == "mp3 ready"]) == 1
    assert len(inbox.messages) == 1


def test_an_email_goes_to_the_owner_when_smtp_is_configured(memory_db, smtp_server):
    controller, inbox = smtp_server
    settings = load(NotificationSettings, **BASE, smtp_host="127.0.0.1", smtp_port=controller.port,
                    smtp_from="converter@example.com")
    job = done_job(memory_db, owner="bob@example.com")

    outcome_of(Notifier(settings, memory_db), message(job), threading.Event())

    [mail] = inbox.messages
    assert mail.rcpt_tos == ["bob@example.com"]
    assert mail.mail_from == "converter@example.com"
    text = email.message_from_bytes(mail.content, policy=email.policy.default).get_content()
    assert "clip.mp4" in text
    assert f"http://converter.test:8080/download?fid={job['mp3_fid']}" in text


def test_smtp_down_releases_the_claim_logs_and_hands_the_message_back_once(memory_db, caplog, monkeypatch):
    """An unsent e-mail never stays claimed: handed back once, then dead-lettered, still unclaimed, so
    that a message replayed from the dead-letter queue sends it."""
    settings = load(NotificationSettings, **BASE, smtp_host="127.0.0.1", smtp_port=1)
    notifier = Notifier(settings, memory_db)
    monkeypatch.setattr(notifier._mailer.send.retry, "sleep", lambda _seconds: None)
    job = done_job(memory_db)

    with caplog.at_level(logging.INFO):
        first = outcome_of(notifier, message(job), threading.Event())
        again = outcome_of(notifier, Delivery(message(job).body, True), threading.Event())

    assert (first.action, again.action) == (Action.REQUEUE, Action.REJECT)
    assert Jobs(memory_db).get(job["_id"])["notified_at"] is None
    failures = [r for r in caplog.records if r.getMessage() == "e-mail not sent"]
    assert len(failures) == 2 and all("Connection refused" in r.error for r in failures)


def with_filename(db, filename: str) -> dict:
    job = done_job(db, owner="carol@example.com")
    db["jobs"].update_one({"_id": job["_id"]}, {"$set": {"filename": filename}})
    return Jobs(db).get(job["_id"])


def test_a_file_name_of_encoded_words_adds_no_header_and_no_recipient(memory_db, smtp_server):
    """The file name survives the upload's clean_filename; set as it is in the Subject, Python's e-mail
    package decoded it into a line break and a Bcc header, and smtplib sent a copy to the attacker."""
    controller, inbox = smtp_server
    settings = load(NotificationSettings, **BASE, smtp_host="127.0.0.1", smtp_port=controller.port)
    job = with_filename(memory_db, "=?utf-8?q?=0D=0ABcc:_attacker@evil.example?=.mp4")

    assert outcome_of(Notifier(settings, memory_db), message(job), threading.Event()).action is Action.ACK

    [mail] = inbox.messages
    assert mail.rcpt_tos == ["carol@example.com"]
    received = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert sorted(received.keys()) == ["Content-Transfer-Encoding", "Content-Type", "From", "MIME-Version",
                                       "Subject", "To"]
    header_lines = mail.content.split(b"\r\n\r\n")[0].splitlines()
    assert not [line for line in header_lines if line.lower().startswith(b"bcc")]
    subject = str(received["Subject"])
    assert "\r" not in subject and "\n" not in subject and "=?" not in subject
    assert subject.startswith("Your MP3 is ready: ")


def test_a_file_name_with_a_line_separator_is_mailed(memory_db, smtp_server, caplog):
    """U+2028 made setting the Subject raise, after the job was claimed: the mail was never sent."""
    controller, inbox = smtp_server
    settings = load(NotificationSettings, **BASE, smtp_host="127.0.0.1", smtp_port=controller.port)
    job = with_filename(memory_db, "holiday\u2028Bcc: attacker@evil.example.mp4")

    with caplog.at_level(logging.WARNING):
        assert outcome_of(Notifier(settings, memory_db), message(job), threading.Event()).action is Action.ACK

    [mail] = inbox.messages
    assert mail.rcpt_tos == ["carol@example.com"]
    received = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert received["Subject"] == "Your MP3 is ready: holiday_Bcc_ attacker_evil.example.mp4"
    assert "Bcc" not in received
    assert "holiday\u2028Bcc: attacker@evil.example.mp4" in received.get_content()  # the body names it as it is
    assert not caplog.records


@pytest.mark.parametrize("body", [b"{", b'"job"', b'{"job_id": "nope"}', b'{"job_id": 7}'])
def test_malformed_messages_are_dead_lettered(memory_db, body):
    outcome = outcome_of(Notifier(load(NotificationSettings, **BASE), memory_db), Delivery(body, False),
                         threading.Event())
    assert outcome.action is Action.REJECT


@pytest.mark.parametrize("deleted", ["hidden", "document-gone"])
def test_a_job_deleted_before_its_notification_is_acked_quietly(memory_db, caplog, deleted):
    job = done_job(memory_db)
    if deleted == "hidden":
        assert JobDeletion(memory_db).delete_owned(job["_id"], job["owner"])
    else:
        Jobs(memory_db).delete(job["_id"])
    notifier = Notifier(load(NotificationSettings, **BASE), memory_db)

    with caplog.at_level(logging.INFO):
        outcome = outcome_of(notifier, message(job), threading.Event())

    assert (outcome.action, outcome.publish) == (Action.ACK, ())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "job_done"]


def test_a_job_that_is_not_done_is_not_announced(memory_db):
    jobs = Jobs(memory_db)
    job = jobs.create("alice@example.com", "clip.mp4", storage.object_id("6b0a7a79263e08cfdd383f3c"))
    body = json.dumps({"job_id": str(job["_id"])}).encode()

    outcome = outcome_of(Notifier(load(NotificationSettings, **BASE), memory_db), Delivery(body, False),
                         threading.Event())

    assert outcome.action is Action.REJECT
    assert jobs.get(job["_id"])["notified_at"] is None
