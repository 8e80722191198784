"""One MP3 message: tell the job's owner, exactly once per job however often it is delivered.

A job deleted before its message arrives is nobody's business any more: the message is acked quietly.

An e-mail that is not sent (SMTP down after the mailer's retries, or a message that cannot be built)
never stays claimed: the claim is released and the failure logged, and the message is handed back
once, then dead-lettered, so that it can be sent again from there.
"""

import logging
import threading

from pymongo.database import Database

from common import telemetry
from common.handler import Delivery, Outcome
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
        url = f"{self._public_url}/download?fid={job['mp3_fid']}"
        log.info("mp3 ready", extra={"event": "job_done", "job_id": job_id, "owner": job["owner"],
                                     "mp3_fid": str(job["mp3_fid"]), "download_url": url})
        if self._mailer.enabled:
            return self._mail(job, url, delivery.redelivered)
        return Outcome.ack()

    def _mail(self, job: dict, url: str, redelivered: bool) -> Outcome:
        job_id = str(job["_id"])
        body = (f"Your MP3 of {job['filename']} is ready.\n\n"
                f"Download it with your token:\n  curl -OJ -H 'Authorization: Bearer <token>' '{url}'\n")
        try:
            self._mailer.send(job["owner"], f"Your MP3 is ready: {subject_text(job['filename'])}", body)
        except Exception as error:  # whatever it is, the mail is unsent and must not stay claimed
            self._jobs.release_notification(job_id)
            log.error("e-mail not sent", extra={"job_id": job_id, "error": repr(error)})
            if redelivered:
                return Outcome.reject(f"e-mail not sent: {error!r}")
            return Outcome.requeue(f"e-mail not sent: {error!r}")
        return Outcome.ack()
