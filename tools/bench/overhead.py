"""7. The fixed cost of a job, read from the services' own spans (bench.job_spans), and the 74 MB
videos' upload->done against raw ffmpeg.

For a 10-second clip and a 74 MB 5-minute video (faststart: piped from GridFS into ffmpeg; and moov
at the end: copied to a temp file first), each run uploads with curl and reads the job's trace:

  in    the video stored (end of `GridFS upload videos`) -> ffmpeg starts: the job recorded, the
        message published and confirmed, delivered, the job marked converting, the video opened
        (and for moov-at-end copied to a temp file)
  out   ffmpeg ends -> the MP3 announced (end of `<mp3 queue> send`, the confirmed publish): the MP3 stored, the
        job marked done, the announcement confirmed (the video and the temp copy are removed after it)

The target is in + out <= 100 ms. Each part is split further by the spans inside it. upload->done is
the `POST /upload` span's start to the announcement, interleaved with raw ffmpeg on the same file.
"""

import sys
import tempfile
from pathlib import Path

from bench.camera import SMALL, mongodb_label
from bench.conversion import raw_ffmpeg
from bench.inputs import RealisticVideo
from bench.job_spans import collect, job_trace
from bench.stack import Client, delete_files, running_stack
from bench.util import MB, Row, Stopwatch, median, ratio_text, rotate, seconds, verdict

CLIP = RealisticVideo("10 s 360p 2 Mbit/s, faststart", 10, "640x360", 2, faststart=True)
FASTSTART = RealisticVideo("5 min 360p 2 Mbit/s, faststart", 300, "640x360", 2, faststart=True)
MOOV_AT_END = SMALL
HOPS_TARGET = 0.100
WHOLE_TARGET = 1.10


def split(trace, video_queue: str, mp3_queue: str) -> dict[str, float]:
    """The hops of one job, and what they are made of, in seconds."""
    stored = trace.end("GridFS upload videos")
    delivered = trace.start(f"{video_queue} process")
    ffmpeg_start, ffmpeg_end = trace.start("ffmpeg"), trace.end("ffmpeg")
    mp3_stored = trace.end("GridFS upload mp3s")
    announced_start = trace.start(f"{mp3_queue} send")
    announced = trace.end(f"{mp3_queue} send")
    parts = {
        "in": ffmpeg_start - stored,
        "out": announced - ffmpeg_end,
        # The delivery comes before the publisher has the broker's confirm: one part, not two.
        "in: job + publish + delivery": delivered - stored,
        "in: start + open/fetch": ffmpeg_start - delivered,
        "out: MP3 store": mp3_stored - ffmpeg_end,
        "out: job done": announced_start - mp3_stored,
        "out: announcement": announced - announced_start,
        "ffmpeg": ffmpeg_end - ffmpeg_start,
        "whole": announced - trace.start("POST"),
    }
    if trace.has("GridFS fetch videos"):
        fetch = trace.first("GridFS fetch videos")
        parts["in: fetch to temp file"] = (fetch.end_time - fetch.start_time) / 1e9
    return parts


def measure(client: Client, env: dict, video: RealisticVideo, runs: int, work: Path, with_raw: bool) -> dict:
    path = video.ensure()
    queues = env["VIDEO_QUEUE"], env["MP3_QUEUE"]
    samples, raw = [], []
    for index in range(runs + 1):  # the first is a warm-up
        for name in rotate(["stack", "raw"] if with_raw else ["stack"], index):
            if name == "raw":
                with Stopwatch() as watch:
                    raw_ffmpeg(path, work / "floor.mp3")
                if index:
                    raw.append({"wall": watch.wall, "other_cores": watch.others})
                continue
            with Stopwatch() as watch:
                job_id = client.upload(path)
                parts = split(job_trace(job_id, f"{queues[1]} send", f"{queues[0]} process"), *queues)
            delete_files(env, job_id)
            if index:
                samples.append({**parts, "other_cores": watch.others})
    result = {"input": video.label, "bytes": path.stat().st_size, "runs": runs, "samples": samples,
              "median": {key: median([s[key] for s in samples]) for key in samples[0] if key != "other_cores"}}
    if raw:
        result["raw"] = raw
        result["ratios"] = [s["whole"] / r["wall"] for s, r in zip(samples, raw, strict=True)]
    return result


def run(quick: bool) -> tuple[list[Row], dict]:
    runs = 3 if quick else 7
    label = mongodb_label("memory")
    cases = (("clip", CLIP, False), ("faststart", FASTSTART, True), ("moov at end", MOOV_AT_END, True))
    for _, video, _ in cases:
        video.ensure()
    results = {"mongodb": label}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as folder, \
            running_stack("oh", converters=1) as (stack, env):
        collect()
        client = Client(stack.gateway_url, curl=True)
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        for key, video, with_raw in cases:
            print(f"overhead: {video.label} x {runs}{', with raw ffmpeg' if with_raw else ''}", file=sys.stderr,
                  flush=True)
            results[key] = measure(client, env, video, runs, Path(folder), with_raw)
    rows = []
    for key, video, with_raw in cases:
        data = results[key]
        m = data["median"]
        hops = [s["in"] + s["out"] for s in data["samples"]]
        case = f"{video.label}, {data['bytes'] / MB:.0f} MB"
        rows.append(Row(section="overhead", case=case, comparison=f"stored -> ffmpeg + ffmpeg -> done [{label}]",
                        value=f"{seconds(median(hops))} ({seconds(min(hops))}-{seconds(max(hops))})",
                        baseline=f"in {seconds(m['in'])}, out {seconds(m['out'])}",
                        target=f"<= {HOPS_TARGET * 1000:.0f} ms", verdict=verdict(median(hops) <= HOPS_TARGET),
                        numbers={"hops": hops}))
        rows.append(Row(section="overhead", case=video.label, comparison="made of (median)",
                        value="; ".join(f"{name} {seconds(m[name])}" for name in m
                                        if name.startswith(("in:", "out:"))), numbers=m))
        if with_raw:
            raw = median([r["wall"] for r in data["raw"]])
            rows.append(Row(section="overhead", case=case, comparison=f"upload->done / raw ffmpeg [{label}]",
                            value=seconds(m["whole"]), baseline=seconds(raw), result=ratio_text(data["ratios"]),
                            target=f"<= {WHOLE_TARGET:.2f}x", verdict=verdict(median(data["ratios"]) <= WHOLE_TARGET),
                            numbers={"ratios": data["ratios"]}))
    return rows, results
