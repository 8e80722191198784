"""2. Pipeline: upload -> done through scripts/run-local's wiring, split into its parts.

For each run the client (logged in once) streams the file to POST /upload, waits until the job is
marked done, and asks GET /jobs/<id>, which must say done. The whole is from the start of the upload
request to that answer. Its parts add up to the whole exactly (bench.stack.Probe's timestamps, read
from the spans the services emit):

  upload      request start -> the gateway has the file in GridFS and the job recorded (it publishes)
  queue wait  -> the converter takes the message: the broker confirms the publish and delivers it
  fetch       -> ffmpeg starts: the job marked converting, the video opened in GridFS (or copied to
              a temp file when it cannot be streamed)
  conversion  the ffmpeg run (its span: converter.ffmpeg.convert, with its progress parsing)
  store       -> MP3 in GridFS, the job marked done, the video dropped: the converter announces the MP3
  notice      -> the client's GET /jobs/<id> answers done

The client learns that the job is done from the Probe (an event set when the converter has settled
the job's message), not by polling: polling GET /jobs/<id> every 10 ms keeps a quarter to half a core
busy here (each poll is a full request through the gateway), which on two cores slows ffmpeg, so
the poller would measure itself. How much it does is measured too, on the long video, as "with a 10 ms
poller" (info).

The raw conversion of the same file (the floor of benchmark 1) runs in the same loop, interleaved.
After each run the job's video and MP3 are deleted from GridFS (bench_stack.delete_files).
"""

import sys
import tempfile
import time
from pathlib import Path

from bench.conversion import raw_ffmpeg
from bench.inputs import Video
from bench.stack import Client, delete_files, probe, running_stack
from bench.util import Row, Stopwatch, median, ratio_text, rotate, seconds, verdict

POLLER_SECONDS = 0.01
WHOLE_TARGET = 1.3  # whole / raw conversion, the long video
OVERHEAD_TARGET = 0.150  # seconds beyond the conversion, the short clip (median)
PARTS = ("upload", "queue wait", "fetch", "conversion", "store", "notice")

CLIP = Video("10 s clip", 10, "320x240", 25)
LONG = Video("5 min 360p", 300, "640x360", 25)
QUICK_LONG = Video("60 s 360p", 60, "640x360", 25)


def parts(start: float, seen: float, events: dict[str, float]) -> dict[str, float]:
    marks = [start, events["recorded"], events["convert_start"], events["ffmpeg_start"], events["ffmpeg_end"],
             events["converted"], seen]
    split = {name: marks[i + 1] - marks[i] for i, name in enumerate(PARTS)}
    split["whole"] = seen - start
    split["overhead"] = split["whole"] - split["conversion"]
    return split


def one_run(client: Client, env: dict, path: Path, poll_seconds: float | None = None,
            keep_files: bool = False) -> dict[str, float]:
    """One upload -> done; poll_seconds=None: told by the Probe, else by polling GET /jobs/<id>.
    Its files are deleted afterwards unless keep_files."""
    with Stopwatch() as watch:
        start = time.perf_counter()
        job_id = client.upload(path)
        answered = time.perf_counter()
        if poll_seconds is None:
            probe().wait(job_id)
            job, seen = client.job(job_id), time.perf_counter()
        else:
            job, seen = client.wait_final(job_id, poll_seconds)
    if job["status"] != "done":
        raise RuntimeError(f"benchmark job failed: {job['error']}")
    if not keep_files:
        delete_files(env, job_id)
    return {**parts(start, seen, probe().wait(job_id)), "upload request": answered - start,
            "cpu": watch.cpu, "other_cores": watch.others}


def summary(samples: list[dict]) -> dict:
    return {key: median([sample[key] for sample in samples]) for key in samples[0]}


def measure(client: Client, env: dict, video: Video, runs: int, work: Path, long: bool) -> dict:
    """runs of the pipeline; for the long video interleaved with raw ffmpeg and with the 10 ms poller."""
    path = video.ensure()
    one_run(client, env, path)  # warm: first upload, GridFS indexes, connections
    variants = ["pipeline", "raw ffmpeg", "with poller"] if long else ["pipeline"]
    samples = {name: [] for name in variants}
    for index in range(runs):
        for name in rotate(variants, index):
            if name == "raw ffmpeg":
                with Stopwatch() as watch:
                    raw_ffmpeg(path, work / "floor.mp3")
                samples[name].append({"wall": watch.wall, "cpu": watch.cpu, "other_cores": watch.others})
            else:
                samples[name].append(one_run(client, env, path, POLLER_SECONDS if name == "with poller" else None))
    return {"input": video.label, "file": path.name, "bytes": path.stat().st_size, "runs": runs,
            "samples": samples, "median": summary(samples["pipeline"]),
            **{f"median {name}": summary(samples[name]) for name in variants if name != "pipeline"}}


def run(quick: bool) -> tuple[list[Row], dict]:
    long_video = QUICK_LONG if quick else LONG
    clip_runs, long_runs = (7, 5) if quick else (15, 7)
    CLIP.ensure()
    long_video.ensure()
    probe()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder, \
            running_stack("pipe", converters=1) as (stack, env):
        client = Client(stack.gateway_url)
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        print(f"pipeline: {CLIP.label} x {clip_runs}", file=sys.stderr, flush=True)
        clip = measure(client, env, CLIP, clip_runs, Path(folder), long=False)
        print(f"pipeline: {long_video.label} x {long_runs}, interleaved with raw ffmpeg and with a 10 ms poller",
              file=sys.stderr, flush=True)
        long = measure(client, env, long_video, long_runs, Path(folder), long=True)
    whole, floor = long["median"]["whole"], long["median raw ffmpeg"]["wall"]
    polled = long["median with poller"]
    conversion = long["median"]["conversion"]
    overhead = clip["median"]["overhead"]
    # Ratios of each repetition's own pair (run back to back), then their median.
    ratios = [[run[key] / raw["wall"] for run, raw in zip(long["samples"][name], long["samples"]["raw ffmpeg"],
                                                          strict=True)]
              for name, key in (("pipeline", "whole"), ("pipeline", "conversion"), ("with poller", "whole"))]
    ratio, conversion_ratio, polled_ratio = (median(values) for values in ratios)
    rows = [
        Row(section="pipeline", case=long_video.label, comparison="upload->done / raw conversion (wall)",
            value=seconds(whole), baseline=seconds(floor), result=ratio_text(ratios[0]),
            target=f"<= {WHOLE_TARGET:.2f}x", verdict=verdict(ratio <= WHOLE_TARGET),
            numbers={"value": whole, "baseline": floor, "ratio": ratio, "ratios": ratios[0]}),
        Row(section="pipeline", case=long_video.label, comparison="its conversion part / raw conversion",
            value=seconds(conversion), baseline=seconds(floor), result=f"{conversion_ratio:.2f}x",
            numbers={"value": conversion, "baseline": floor, "ratio": conversion_ratio}),
        Row(section="pipeline", case=long_video.label,
            comparison=f"with a {POLLER_SECONDS * 1000:.0f} ms poller: upload->done / raw",
            value=seconds(polled["whole"]), baseline=seconds(floor), result=f"{polled_ratio:.2f}x",
            numbers={"value": polled["whole"], "baseline": floor, "ratio": polled_ratio,
                     "conversion": polled["conversion"]}),
        Row(section="pipeline", case=CLIP.label, comparison="overhead beyond conversion (median)",
            value=seconds(overhead), baseline=f"whole {seconds(clip['median']['whole'])}",
            target=f"<= {OVERHEAD_TARGET * 1000:.0f} ms", verdict=verdict(overhead <= OVERHEAD_TARGET),
            numbers={"value": overhead}),
    ]
    return rows, {"poller_seconds": POLLER_SECONDS, "clip": clip, "long": long,
                  "targets": {"whole_ratio": WHOLE_TARGET, "overhead_seconds": OVERHEAD_TARGET}}
