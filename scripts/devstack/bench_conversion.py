"""1. Conversion: the converter against raw ffmpeg (the floor) and moviepy (the tutorial's way).

Variants, all run from this process, one at a time, interleaved (each repetition starts with
another one), each timed for wall seconds and CPU seconds (this process plus the children it
waited for, so ffmpeg's CPU counts wherever it runs):

- raw ffmpeg: `ffmpeg -nostdin -hide_banner -y -i IN <MP3_OPTIONS> OUT`, the converter's own
  output options (converter.ffmpeg.MP3_OPTIONS) and binary; its log goes to /dev/null.
- step: converter.ffmpeg.convert(), the ffmpeg run with progress parsing, watchdog and the check of
  the result.
- step+storage: the converter's whole handler for one job (Converter.__call__), on mongomock:
  fetch the video from GridFS to a temp file, convert, store the MP3 in GridFS, finish the job.
  Putting the video into GridFS before and removing the files after are not timed.
- moviepy: `VideoFileClip(IN).audio.write_audiofile(OUT)`, then close() (which reaps its ffmpeg
  processes, so that their CPU is counted); logger=None only silences its progress bar.
"""

import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from devstack.bench_inputs import Video
from devstack.bench_util import Row, Stopwatch, median, rotate, seconds, verdict

TARGET = 1.10
VARIANTS = ("raw ffmpeg", "step", "step+storage", "moviepy")

FULL_INPUTS = (
    Video("60 s 720p", 60, "1280x720", 25),
    Video("5 min 360p", 300, "640x360", 25),
    Video("30 min 160x120 1 fps", 1800, "160x120", 1),
)
QUICK_INPUTS = (
    Video("20 s 720p", 20, "1280x720", 25),
    Video("60 s 360p", 60, "640x360", 25),
    Video("5 min 160x120 1 fps", 300, "160x120", 1),
)


def raw_ffmpeg(source: Path, target: Path) -> None:
    from converter.ffmpeg import MP3_OPTIONS, ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-i", str(source), *MP3_OPTIONS, str(target)],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def step(source: Path, target: Path) -> None:
    from converter.ffmpeg import convert

    convert(source, target, cancel=threading.Event(), timeout=3600)


def moviepy(source: Path, target: Path) -> None:
    from moviepy import VideoFileClip

    clip = VideoFileClip(str(source))
    try:
        clip.audio.write_audiofile(str(target), logger=None)
    finally:
        clip.close()


class StepWithStorage:
    """The converter's handler for one job, against an in-process mongomock (as scripts/run-local)."""

    def __init__(self):
        from common import storage
        from common.jobs import Jobs
        from common.settings import ConverterSettings, load
        from converter.handler import Converter

        self.db = storage.connect(storage.MEMORY, "bench_conversion")
        self.jobs = Jobs(self.db)
        self.videos = storage.bucket(self.db, storage.VIDEOS)
        self.mp3s = storage.bucket(self.db, storage.MP3S)
        settings = load(ConverterSettings, rabbitmq_url="amqp://unused/", mongodb_uri=storage.MEMORY,
                        mongodb_db="bench_conversion")
        self.converter = Converter(settings, self.db)

    def prepare(self, source: Path) -> dict:
        with source.open("rb") as video:
            video_fid = self.videos.upload_from_stream(source.name, video)
        return self.jobs.create("bench@example.com", source.name, video_fid)

    def run(self, job: dict) -> None:
        from common.broker import Action, encode
        from common.consumer import Delivery

        message = {"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": None,
                   "owner": job["owner"]}
        outcome = self.converter(Delivery(body=encode(message), redelivered=False), threading.Event())
        if outcome.action is not Action.ACK:
            raise RuntimeError(f"the converter did not convert the benchmark video: {outcome.reason}")

    def clean(self, job: dict) -> None:
        done = self.jobs.get(job["_id"])
        self.videos.delete(job["video_fid"])
        if done and done.get("mp3_fid"):
            self.mp3s.delete(done["mp3_fid"])
        self.jobs.delete(job["_id"])


def measure(video: Video, runs: int, work: Path, storage: StepWithStorage) -> dict:
    source = video.ensure()
    samples = {name: [] for name in VARIANTS}
    raw_ffmpeg(source, work / "warm.mp3")  # the input in the page cache, the binary loaded
    for run in range(runs):
        for name in rotate(list(VARIANTS), run):
            target = work / f"{name.replace(' ', '-').replace('+', '-')}.mp3"
            if name == "step+storage":
                job = storage.prepare(source)
                with Stopwatch() as watch:
                    storage.run(job)
                storage.clean(job)
            else:
                function = {"raw ffmpeg": raw_ffmpeg, "step": step, "moviepy": moviepy}[name]
                with Stopwatch() as watch:
                    function(source, target)
            target.unlink(missing_ok=True)
            samples[name].append({"wall": watch.wall, "cpu": watch.cpu})
    return {
        "input": video.label,
        "file": source.name,
        "bytes": source.stat().st_size,
        "runs": runs,
        "samples": samples,
        "median": {name: {kind: median([s[kind] for s in runs_]) for kind in ("wall", "cpu")}
                   for name, runs_ in samples.items()},
    }


def rows_for(result: dict) -> list[Row]:
    rows = []
    floor = result["median"]["raw ffmpeg"]
    for name in ("step", "step+storage", "moviepy"):
        for kind, title in (("wall", "wall"), ("cpu", "CPU")):
            value, base = result["median"][name][kind], floor[kind]
            ratio = value / base
            targeted = name != "moviepy"
            rows.append(Row(
                section="conversion", case=result["input"], comparison=f"{title}: {name} / raw ffmpeg",
                value=seconds(value), baseline=seconds(base), result=f"{ratio:.2f}x",
                target=f"<= {TARGET:.2f}x" if targeted else "",
                verdict=verdict(ratio <= TARGET) if targeted else "info",
                numbers={"value": value, "baseline": base, "ratio": ratio},
            ))
    step_wall, movie_wall = result["median"]["step"]["wall"], result["median"]["moviepy"]["wall"]
    rows.append(Row(section="conversion", case=result["input"], comparison="wall: moviepy / step (speed-up)",
                    value=seconds(movie_wall), baseline=seconds(step_wall), result=f"{movie_wall / step_wall:.2f}x",
                    numbers={"ratio": movie_wall / step_wall}))
    return rows


def run(quick: bool) -> tuple[list[Row], dict]:
    inputs = QUICK_INPUTS if quick else FULL_INPUTS
    runs = 2 if quick else 3
    for video in inputs:
        video.ensure()
    import moviepy as _moviepy  # noqa: F401  (its import is not part of its first conversion)

    storage = StepWithStorage()
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as folder:
        work = Path(folder)
        for video in inputs:
            print(f"conversion: {video.label}, {runs} runs of each variant", file=sys.stderr, flush=True)
            result = measure(video, runs, work, storage)
            results.append(result)
            rows += rows_for(result)
    return rows, {"runs": runs, "inputs": results, "target_ratio": TARGET}
