"""python -m notification: consume the mp3 queue until SIGTERM."""

from common.service import serve_consumer
from common.settings import NotificationSettings
from notification.handler import Notifier


def main() -> None:
    serve_consumer(NotificationSettings, lambda settings: settings.mp3_queue, Notifier)


if __name__ == "__main__":
    main()
