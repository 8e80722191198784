"""python -m converter: consume the video queue until SIGTERM."""

from common import logs, storage
from common.consumer import Consumer
from common.service import stop_on_signals
from common.settings import ConverterSettings, load
from converter.handler import Converter


def consumer(settings: ConverterSettings, db) -> Consumer:
    return Consumer(url=settings.rabbitmq_url, queue=settings.video_queue,
                    queues=(settings.video_queue, settings.mp3_queue), handler=Converter(settings, db),
                    heartbeat_file=settings.heartbeat_file,
                    shutdown_grace_seconds=settings.shutdown_grace_seconds)


def main() -> None:
    settings = load(ConverterSettings)
    logs.configure(settings.log_level)
    db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    consumer(settings, db).run(stop_on_signals())


if __name__ == "__main__":
    main()
