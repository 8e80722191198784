"""python -m notification: consume the mp3 queue until SIGTERM."""

from common import logs, storage
from common.consumer import Consumer
from common.service import stop_on_signals
from common.settings import NotificationSettings, load
from notification.handler import Notifier


def consumer(settings: NotificationSettings, db) -> Consumer:
    return Consumer(url=settings.rabbitmq_url, queue=settings.mp3_queue,
                    queues=(settings.video_queue, settings.mp3_queue), handler=Notifier(settings, db),
                    heartbeat_file=settings.heartbeat_file,
                    shutdown_grace_seconds=settings.shutdown_grace_seconds)


def main() -> None:
    settings = load(NotificationSettings)
    logs.configure(settings.log_level)
    db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    consumer(settings, db).run(stop_on_signals())


if __name__ == "__main__":
    main()
