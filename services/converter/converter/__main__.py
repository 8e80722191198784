"""python -m converter: consume the video queue, and sweep expired jobs, until SIGTERM. `build` is its one
wiring: this, scripts/run-local and the tests all call it."""

from common import storage
from common.service import ConsumerService, serve_consumer
from common.settings import ConverterSettings
from converter.cleanup import Cleanup
from converter.handler import Converter
from converter.undumpable import make_undumpable


def build(settings: ConverterSettings, db=None) -> ConsumerService:
    """The converter on the MongoDB of `settings` or on `db`: its handler, and the cleanup beside it."""
    if db is None:
        db = storage.connect(settings.mongodb_uri, settings.mongodb_db)
    storage.ensure_indexes(db)
    return ConsumerService(queue=settings.video_queue, handler=Converter(settings, db),
                           publishes_to=(settings.mp3_queue,), background_tasks=(Cleanup(settings, db),))


def main() -> None:
    make_undumpable()  # before anything else runs, ffmpeg above all
    serve_consumer(ConverterSettings, build)


if __name__ == "__main__":
    main()
