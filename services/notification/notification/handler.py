"""One MP3 message: tell the job's owner, exactly once per job however often it is delivered.

A job deleted before its message arrives is nobody's business any more: the message is acked quietly.

An e-mail that is not sent (SMTP down after the mailer's retries, or a message that cannot be built)
never stays claimed: the claim is released and the failure logged, and the message is handed back
once, then dead-lettered, so that it can be sent again from there. The same holds for any other
failure: a message that goes to the dead-letter queue leaves no claim behind (`give_up`).
"""

import logging
import threading

from pymongo.database import Database

from common import telemetry
from common.handler import Delivery, Outcome, Reject, decode
from common.jobs import JobGone, Jobs, Status
from common.settings import NotificationSettings
from notification.mail import Mailer, subject_text

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, settings: NotificationSettings, db: Database, mailer: Mailer | None = None):
        self._jobs = Jobs(db)
        self._public_url = str(settings.public_url).rstrip("/")
        self._mailer = mailer or Mailer(settings)

    def __call__(self, delivery: Delivery, _cancel: threading.Event) -> Outcome:
        try:
            job = self._jobs.of_message(delivery.body)
        except JobGone as gone:
            log.info("job deleted; not notifying", extra={"job_id": gone.job_id})
            return Outcome.ack()
        job_id = str(job["_id"])
        telemetry.annotate(job_id=job_id)
        if job["status"] != Status.DONE:
            return Outcome.reject(f"job {job_id} is {job['status']}, not done")
        job = self._jobs.claim_notification(job_id)
        if job is None:
            return Outcome.ack()  # already notified (a redelivery), or deleted a moment ago
        try:
            return self._announce(job, delivery.redelivered)
        except Exception:
            self._jobs.release_notification(job_id)  # unannounced: the redelivery must not find it claimed
            raise

    def _announce(self, job: dict, redelivered: bool) -> Outcome:
        url = f"{self._public_url}/download?fid={job['mp3_fid']}"
        log.info("mp3 ready", extra={"event": "job_done", "job_id": str(job["_id"]), "owner": job["owner"],
                                     "email": _address(job), "mp3_fid": str(job["mp3_fid"]), "download_url": url})
        if self._mailer.enabled:
            return self._mail(job, url, redelivered)
        return Outcome.ack()

    def give_up(self, delivery: Delivery, _reason: str) -> None:
        """The message goes to the dead-letter queue: the job stays done (its MP3 is there), and its
        notification unclaimed, so that the message can be sent again from there."""
        try:
            job_id = decode(delivery.body)["job_id"]
        except Reject:
            return
        if self._jobs.get(job_id) is not None:
            self._jobs.release_notification(job_id)

    def _mail(self, job: dict, url: str, redelivered: bool) -> Outcome:
        job_id = str(job["_id"])
        body = (f"Your MP3 of {job['filename']} is ready.\n\n"
                f"Download it with your token:\n  curl -OJ -H 'Authorization: Bearer <token>' '{url}'\n")
        try:
            self._mailer.send(_address(job), f"Your MP3 is ready: {subject_text(job['filename'])}", body)
        except Exception as error:  # whatever it is, the mail is unsent and must not stay claimed
            self._jobs.release_notification(job_id)
            log.error("e-mail not sent", extra={"job_id": job_id, "error": repr(error)})
            if redelivered:
                return Outcome.reject(f"e-mail not sent: {error!r}")
            return Outcome.requeue(f"e-mail not sent: {error!r}")
        return Outcome.ack()


def _address(job: dict) -> str:
    """Where the owner is told: the address recorded with the job; a job from before jobs were keyed by
    account id has its address as its owner."""
    return job.get("email") or job["owner"]
