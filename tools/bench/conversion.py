"""1. Conversion: the converter against raw ffmpeg (the floor) and moviepy (the tutorial's way).

Variants, all run from this process, one at a time, interleaved (each repetition runs the three
targeted ones back to back, starting with another one each time, then moviepy in the first few
repetitions), each timed for wall seconds and CPU seconds (this process plus the children it
waited for, so ffmpeg's CPU counts wherever it runs). A ratio is the median of the repetitions'
own ratios (paired), so that the machine's slow drift cancels; the values shown are medians.

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

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.inputs import Video
from bench.util import Row, Stopwatch, median, ratio_text, rotate, seconds, verdict

TARGET = 1.10
VARIANTS = ("raw ffmpeg", "step", "step+storage", "moviepy")

# (input, repetitions, of which moviepy runs in the first so many)
FULL_INPUTS = (
    (Video("60 s 720p", 60, "1280x720", 25), 21, 3),
    (Video("5 min 360p", 300, "640x360", 25), 15, 3),
    (Video("30 min 160x120 1 fps", 1800, "160x120", 1), 5, 2),
)
QUICK_INPUTS = (
    (Video("20 s 720p", 20, "1280x720", 25), 15, 1),
    (Video("60 s 360p", 60, "640x360", 25), 15, 1),
    (Video("5 min 160x120 1 fps", 300, "160x120", 1), 5, 1),
)


def raw_ffmpeg(source: Path, target: Path) -> None:
    from converter.ffmpeg import MP3_OPTIONS, ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-i", str(source), *MP3_OPTIONS, str(target)],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def step(source: Path, target: Path) -> None:
    from converter.ffmpeg import convert

    convert(source, target, cancel=threading.Event(), timeout=3600, max_duration=14400)


def load_moviepy() -> None:
    """Import moviepy ahead of its first conversion, without the side effect of its import.

    moviepy.config loads the nearest .env into os.environ (python-dotenv's find_dotenv), which
    would hand this project's .env (its MySQL account, ...) to the stacks the later benchmarks start.
    """
    saved = dict(os.environ)
    try:
        import moviepy  # noqa: F401
    finally:
        os.environ.clear()
        os.environ.update(saved)


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
        from converter.__main__ import build
        from runlocal import mongo

        settings = load(ConverterSettings, rabbitmq_url="amqp://unused/", mongodb_uri=mongo.MEMORY,
                        mongodb_db="bench_conversion")
        self.db = mongo.connect(settings.mongodb_uri, settings.mongodb_db)
        self.jobs = Jobs(self.db)
        self.videos = storage.bucket(self.db, storage.VIDEOS)
        self.mp3s = storage.bucket(self.db, storage.MP3S)
        self.converter = build(settings, db=self.db).handler

    def prepare(self, source: Path) -> dict:
        with source.open("rb") as video:
            video_fid = self.videos.upload_from_stream(source.name, video)
        return self.jobs.create("bench@example.com", source.name, video_fid)

    def run(self, job: dict) -> None:
        from common.broker import encode
        from common.handler import Action, Delivery

        message = {"job_id": str(job["_id"]), "video_fid": str(job["video_fid"]), "mp3_fid": None,
                   "owner": job["owner"]}
        outcome = self.converter(Delivery(body=encode(message), redelivered=False), threading.Event())
        if outcome.action is not Action.ACK:
            raise RuntimeError(f"the converter did not convert the benchmark video: {outcome.reason}")
        outcome.then()  # the tidying up the consumer does once the announcement is sent

    def clean(self, job: dict) -> None:
        from common import storage

        done = self.jobs.get(job["_id"])
        storage.delete_file(self.videos, job["video_fid"])  # already gone: the converter drops it once announced
        storage.delete_file(self.mp3s, done and done.get("mp3_fid"))
        self.jobs.delete(job["_id"])


def measure(video: Video, runs: int, moviepy_runs: int, work: Path, storage: StepWithStorage) -> dict:
    """runs repetitions; each runs the three targeted variants back to back, in a rotating order,
    then (in the first moviepy_runs repetitions only: it is slow and untargeted) moviepy."""
    source = video.ensure()
    samples = {name: [] for name in VARIANTS}
    raw_ffmpeg(source, work / "warm.mp3")  # the input in the page cache, the binary loaded
    for index in range(runs):
        order = rotate(["raw ffmpeg", "step", "step+storage"], index) + (["moviepy"] if index < moviepy_runs else [])
        for name in order:
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
            samples[name].append({"wall": watch.wall, "cpu": watch.cpu, "other_cores": watch.others})
    kinds = ("wall", "cpu", "other_cores")
    return {
        "input": video.label,
        "file": source.name,
        "bytes": source.stat().st_size,
        "runs": runs,
        "moviepy_runs": moviepy_runs,
        "samples": samples,
        "median": {name: {kind: median([s[kind] for s in runs_]) for kind in kinds} for name, runs_ in samples.items()},
        # Ratios of each repetition's own pair, then their median: slow drift of the machine cancels.
        "ratio": {name: {kind: paired_ratio(samples[name], samples["raw ffmpeg"], kind) for kind in ("wall", "cpu")}
                  for name in ("step", "step+storage", "moviepy")},
    }


def paired_ratios(values: list[dict], bases: list[dict], kind: str) -> list[float]:
    return [value[kind] / base[kind] for value, base in zip(values, bases, strict=False)]


def paired_ratio(values: list[dict], bases: list[dict], kind: str) -> float:
    return median(paired_ratios(values, bases, kind))


def rows_for(result: dict) -> list[Row]:
    rows = []
    floor = result["median"]["raw ffmpeg"]
    for name in ("step", "step+storage", "moviepy"):
        for kind, title in (("wall", "wall"), ("cpu", "CPU")):
            value, base, ratio = result["median"][name][kind], floor[kind], result["ratio"][name][kind]
            ratios = paired_ratios(result["samples"][name], result["samples"]["raw ffmpeg"], kind)
            targeted = name != "moviepy"
            rows.append(Row(
                section="conversion", case=result["input"], comparison=f"{title}: {name} / raw ffmpeg",
                value=seconds(value), baseline=seconds(base),
                result=ratio_text(ratios) if targeted else f"{ratio:.2f}x",
                target=f"<= {TARGET:.2f}x" if targeted else "",
                verdict=verdict(ratio <= TARGET) if targeted else "info",
                numbers={"value": value, "baseline": base, "ratio": ratio, "ratios": ratios},
            ))
    speedup = paired_ratio(result["samples"]["moviepy"], result["samples"]["step"], "wall")
    rows.append(Row(section="conversion", case=result["input"], comparison="wall: moviepy / step (speed-up)",
                    value=seconds(result["median"]["moviepy"]["wall"]),
                    baseline=seconds(result["median"]["step"]["wall"]), result=f"{speedup:.2f}x",
                    numbers={"ratio": speedup}))
    return rows


def run(quick: bool) -> tuple[list[Row], dict]:
    inputs = QUICK_INPUTS if quick else FULL_INPUTS
    for video, _, _ in inputs:
        video.ensure()
    load_moviepy()

    storage = StepWithStorage()
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as folder:
        work = Path(folder)
        for video, runs, moviepy_runs in inputs:
            print(f"conversion: {video.label}, {runs} runs of each variant ({moviepy_runs} of moviepy)",
                  file=sys.stderr, flush=True)
            result = measure(video, runs, moviepy_runs, work, storage)
            results.append(result)
            rows += rows_for(result)
    return rows, {"inputs": results, "target_ratio": TARGET}
