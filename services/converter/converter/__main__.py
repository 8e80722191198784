"""python -m converter: consume the video queue, and sweep expired jobs, until SIGTERM."""

from common.service import serve_consumer
from common.settings import ConverterSettings
from converter.cleanup import Cleanup
from converter.handler import Converter


def main() -> None:
    serve_consumer(ConverterSettings, lambda settings: settings.video_queue, Converter,
                   publishes_to=lambda settings: (settings.mp3_queue,), background_tasks=(Cleanup,))


if __name__ == "__main__":
    main()
