"""python -m notification: consume the mp3 queue until SIGTERM. `build` is its one wiring: this,
scripts/run-local and the tests all call it."""

from common import storage
from common.service import ConsumerService, serve_consumer
from common.settings import NotificationSettings
from notification.handler import Notifier


def build(settings: NotificationSettings, db=None, mailer=None) -> ConsumerService:
    """The notifier on the MongoDB of `settings` or on `db`, sending through SMTP_* or `mailer`."""
    if db is None:
        db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    return ConsumerService(queue=settings.mp3_queue, handler=Notifier(settings, db, mailer))


def main() -> None:
    serve_consumer(NotificationSettings, build)


if __name__ == "__main__":
    main()
