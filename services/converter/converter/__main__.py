"""python -m converter: consume the video queue until SIGTERM."""

from common.consumer import serve
from common.settings import ConverterSettings
from converter.handler import Converter


def main() -> None:
    serve(ConverterSettings, lambda settings: settings.video_queue, Converter)


if __name__ == "__main__":
    main()
