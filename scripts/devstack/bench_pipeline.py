"""2. Pipeline: upload -> done through scripts/run-local's wiring, split into its parts.

For each run the client logs in once, streams the file to POST /upload and polls GET /jobs/<id>
every 10 ms until it says done. The whole is from the start of the upload request to the poll that
sees done. Its parts, which add up to the whole exactly (bench_stack.Probe takes the timestamps):

  upload      request start -> the gateway's "upload queued" (file in GridFS, job recorded, message
              confirmed by the broker; the 202 follows)
  queue wait  -> the converter starts the job (it took the message and marked the job converting)
  fetch       -> the video is in the converter's temp file and ffmpeg starts
  conversion  the ffmpeg run (converter.ffmpeg.convert, with its progress parsing)
  store       -> MP3 in GridFS and the job marked done (the converter's "converted")
  notice      -> the client's next poll sees done (at most one poll interval plus one request)

The raw conversion of the same file (the floor of benchmark 1) is run in the same loop, before
each pipeline run.
"""

import sys
import tempfile
from pathlib import Path

from devstack.bench_conversion import raw_ffmpeg
from devstack.bench_inputs import Video
from devstack.bench_stack import Client, probe, running_stack
from devstack.bench_util import Row, Stopwatch, median, seconds, verdict

POLL_SECONDS = 0.01
WHOLE_TARGET = 1.3  # whole / raw conversion, the long video
OVERHEAD_TARGET = 0.150  # seconds beyond the conversion, the short clip (median)
PARTS = ("upload", "queue wait", "fetch", "conversion", "store", "notice")

CLIP = Video("10 s clip", 10, "320x240", 25)
LONG = Video("5 min 360p", 300, "640x360", 25)
QUICK_LONG = Video("60 s 360p", 60, "640x360", 25)


def parts(start: float, seen: float, events: dict[str, float]) -> dict[str, float]:
    marks = [start, events["queued"], events["convert_start"], events["ffmpeg_start"], events["ffmpeg_end"],
             events["converted"], seen]
    split = {name: marks[i + 1] - marks[i] for i, name in enumerate(PARTS)}
    split["whole"] = seen - start
    split["overhead"] = split["whole"] - split["conversion"]
    return split


def one_run(client: Client, path: Path) -> dict[str, float]:
    from time import perf_counter

    start = perf_counter()
    job_id = client.upload(path)
    job, seen = client.wait_final(job_id, POLL_SECONDS)
    if job["status"] != "done":
        raise RuntimeError(f"benchmark job failed: {job['error']}")
    return parts(start, seen, probe().wait(job_id))


def measure(client: Client, video: Video, runs: int, with_floor: bool, work: Path) -> dict:
    path = video.ensure()
    one_run(client, path)  # warm: first upload, GridFS indexes, connections
    samples, floor = [], []
    for _ in range(runs):
        if with_floor:
            with Stopwatch() as watch:
                raw_ffmpeg(path, work / "floor.mp3")
            floor.append(watch.wall)
        samples.append(one_run(client, path))
    result = {"input": video.label, "file": path.name, "bytes": path.stat().st_size, "runs": runs,
              "samples": samples, "median": {key: median([s[key] for s in samples]) for key in samples[0]}}
    if floor:
        result["raw_ffmpeg_wall"] = floor
        result["raw_ffmpeg_wall_median"] = median(floor)
    return result


def split_text(result: dict) -> str:
    m = result["median"]
    return ", ".join(f"{name} {seconds(m[name])}" for name in PARTS)


def run(quick: bool) -> tuple[list[Row], dict]:
    long_video = QUICK_LONG if quick else LONG
    clip_runs, long_runs = (7, 1) if quick else (15, 3)
    CLIP.ensure()
    long_video.ensure()
    probe()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder, \
            running_stack("pipe", converters=1) as (stack, env):
        client = Client(stack.gateway_url)
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        print(f"pipeline: {CLIP.label} x {clip_runs}", file=sys.stderr, flush=True)
        clip = measure(client, CLIP, clip_runs, with_floor=False, work=Path(folder))
        print(f"pipeline: {long_video.label} x {long_runs}, each after a raw ffmpeg run", file=sys.stderr,
              flush=True)
        long = measure(client, long_video, long_runs, with_floor=True, work=Path(folder))
    whole, floor = long["median"]["whole"], long["raw_ffmpeg_wall_median"]
    overhead = clip["median"]["overhead"]
    rows = [
        Row(section="pipeline", case=long_video.label, comparison="upload->done / raw conversion (wall)",
            value=seconds(whole), baseline=seconds(floor), result=f"{whole / floor:.2f}x",
            target=f"<= {WHOLE_TARGET:.2f}x", verdict=verdict(whole / floor <= WHOLE_TARGET),
            numbers={"value": whole, "baseline": floor, "ratio": whole / floor}),
        Row(section="pipeline", case=long_video.label, comparison="split (median)", value=split_text(long)),
        Row(section="pipeline", case=CLIP.label, comparison="overhead beyond conversion (median)",
            value=seconds(overhead), baseline=f"whole {seconds(clip['median']['whole'])}",
            target=f"<= {OVERHEAD_TARGET * 1000:.0f} ms", verdict=verdict(overhead <= OVERHEAD_TARGET),
            numbers={"value": overhead}),
        Row(section="pipeline", case=CLIP.label, comparison="split (median)", value=split_text(clip)),
    ]
    return rows, {"poll_seconds": POLL_SECONDS, "clip": clip, "long": long,
                  "targets": {"whole_ratio": WHOLE_TARGET, "overhead_seconds": OVERHEAD_TARGET}}
