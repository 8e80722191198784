"""9. Capacity under sustained load: many users, each uploading three phone-like clips, with one and
with two converters on this machine's cores.

Each user (an account of its own, its own curl uploads) starts at a moment spread evenly over the
arrival window and sends its three clips one after another. The window is a third of the time raw
ffmpeg needs for all the clips one at a time, so that the queue builds up: the converters are the
bottleneck, as capacity means. The clock runs from the first upload's start to the last MP3's
announcement (the services' spans, bench.job_spans).

Baseline, in the same run on the same cores: raw ffmpeg converting the same file back to back, one at
a time (against one converter) and two at a time (against two). Jobs per minute, the ratio (target
>= 0.9x), p50/p95 of each job's upload->done (`POST /upload` start to its announcement), and that every
job ended done exactly once: one successful `<video> process` span (outcome ack), one announcement,
and GET /jobs/<id> says done.

Memory: the stack runs in this one process (scripts/run-local's wiring: gateway, converters,
notification, and mongomock holding every stored video), so its peak resident set (VmHWM) is the sum of
all of them and of the videos waiting in storage; the gateway and converter alone are measured by the
memory benchmark (3), ffmpeg's own peak there too. In full mode the waiting videos reach about
16 GB (20 users x three 281 MB clips, most of them queued): on a machine with less to spare, run
fewer users (scripts/bench --users N).
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.camera import mongodb_label
from bench.conversion import raw_ffmpeg
from bench.inputs import RealisticVideo
from bench.job_spans import add_users, collect, job_trace, logged_in
from bench.stack import delete_files, running_stack
from bench.util import MB, Row, Stopwatch, seconds, split_cpu_seconds, verdict

CLIP = RealisticVideo("3 min 720p 12 Mbit/s, faststart", 180, "1280x720", 12, faststart=True)
QUICK_CLIP = RealisticVideo("60 s 720p 12 Mbit/s, faststart", 60, "1280x720", 12, faststart=True)
CLIPS_PER_USER = 3
TARGET = 0.9
RAW_SAMPLE = 6  # raw ffmpeg's rate is measured on this many conversions
USERS_ENV = "BENCH_CAPACITY_USERS"  # scripts/bench --users


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def raw_rate(path: Path, parallel: int, work: Path) -> dict:
    _, children = split_cpu_seconds()
    with Stopwatch() as watch, ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda index: raw_ffmpeg(path, work / f"raw-{index}.mp3"), range(RAW_SAMPLE)))
    return {"jobs_per_minute": RAW_SAMPLE / watch.wall * 60, "seconds": watch.wall, "other_cores": watch.others,
            "ffmpeg_cpu_per_job": (split_cpu_seconds()[1] - children) / RAW_SAMPLE}


def load(stack, env: dict, users: list, path: Path, window: float) -> dict:
    queues = env["VIDEO_QUEUE"], env["MP3_QUEUE"]
    clients = [logged_in(stack, user) for user in users]
    job_ids: list[str] = []
    lock = threading.Lock()
    started = time.time()

    def user(index: int, client) -> None:
        time.sleep(window * index / len(clients))
        for _ in range(CLIPS_PER_USER):
            job = client.upload(path)
            with lock:
                job_ids.append((job, client))

    reset_peak_rss()
    before = peak_rss_mb()
    cpu_before = split_cpu_seconds()
    with Stopwatch() as watch:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            list(pool.map(user, range(len(clients)), clients))
        traces = {job: job_trace(job, f"{queues[1]} send", f"{queues[0]} process") for job, _ in job_ids}
        cpu_after = split_cpu_seconds()  # every job done (and its ffmpeg waited for)
    finished = max(t.end(f"{queues[1]} send") for t in traces.values())
    first = min(t.start("POST /upload") for t in traces.values())
    # What a job spends in the converter (delivery to its settling) and in ffmpeg, against raw ffmpeg's
    # time per job: with the converters busy all along, jobs per minute follows from the former.
    in_converter = statistics.median(t.end(f"{queues[0]} process") - t.start(f"{queues[0]} process")
                                     for t in traces.values())
    in_ffmpeg = statistics.median(t.end("ffmpeg") - t.start("ffmpeg") for t in traces.values())
    latencies = sorted(t.end(f"{queues[1]} send") - t.start("POST /upload") for t in traces.values())
    once = sum(1 for job, owner in job_ids if _done_once(traces[job], queues) and owner.job(job)["status"] == "done")
    for job, _ in job_ids:
        delete_files(env, job)
    return {"jobs": len(job_ids), "seconds": finished - first,
            "jobs_per_minute": len(job_ids) / (finished - first) * 60,
            "p50": statistics.median(latencies), "p95": latencies[max(0, int(len(latencies) * 0.95) - 1)],
            "done_once": once, "stack_peak_rss_mb": peak_rss_mb(), "stack_rss_before_mb": before,
            "window": window, "started": started, "other_cores": watch.others,
            "in_converter": in_converter, "in_ffmpeg": in_ffmpeg,
            "stack_cpu_per_job": (cpu_after[0] - cpu_before[0]) / len(job_ids),
            "children_cpu_per_job": (cpu_after[1] - cpu_before[1]) / len(job_ids)}


def cpu_ratio(stack: dict, raw: dict) -> float:
    return (stack["stack_cpu_per_job"] + stack["children_cpu_per_job"]) / raw["ffmpeg_cpu_per_job"]


def _done_once(trace, queues) -> bool:
    acks = [s for s in trace.all[f"{queues[0]} process"] if s.attributes.get("mp3converter.outcome") == "ack"]
    return len(acks) == 1 and len(trace.all[f"{queues[1]} send"]) == 1


def run(quick: bool) -> tuple[list[Row], dict]:
    video = QUICK_CLIP if quick else CLIP
    user_count = int(os.environ.get(USERS_ENV) or (5 if quick else 20))
    path = video.ensure()
    label = mongodb_label("memory")
    results = {"input": video.label, "bytes": path.stat().st_size, "users": user_count, "mongodb": label}
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as folder:
        raw_ffmpeg(path, Path(folder) / "warm.mp3")
        for converters in (1, 2):
            print(f"capacity: raw ffmpeg {converters} at a time on {RAW_SAMPLE} x {video.label}", file=sys.stderr,
                  flush=True)
            raw = raw_rate(path, converters, Path(folder))
            jobs = user_count * CLIPS_PER_USER
            window = jobs * 60 / raw["jobs_per_minute"] / 3
            print(f"capacity: {user_count} users x {CLIPS_PER_USER} x {video.label} over {window:.0f} s, "
                  f"{converters} converter(s)", file=sys.stderr, flush=True)
            with running_stack(f"cap{converters}", converters=converters) as (stack, env):
                collect()
                users = add_users(env, user_count)
                measured = load(stack, env, users, path, window)
            results[str(converters)] = {"raw": raw, "stack": measured}
    rows = []
    for converters in (1, 2):
        data = results[str(converters)]
        stack, raw = data["stack"], data["raw"]
        ratio = stack["jobs_per_minute"] / raw["jobs_per_minute"]
        case = f"{user_count} users x {CLIPS_PER_USER} x {video.label} ({results['bytes'] / MB:.0f} MB), " \
               f"{converters} converter{'s' if converters > 1 else ''}"
        rows += [Row(section="capacity", case=case,
                     comparison=f"jobs/minute / raw ffmpeg {converters} at a time [{label}]",
                     value=f"{stack['jobs_per_minute']:.1f}/min", baseline=f"{raw['jobs_per_minute']:.1f}/min",
                     result=f"{ratio:.2f}x", target=f">= {TARGET:.1f}x", verdict=verdict(ratio >= TARGET),
                     numbers={"ratio": ratio}),
                 Row(section="capacity", case=case, comparison="upload->done p50 / p95",
                     value=f"{seconds(stack['p50'])} / {seconds(stack['p95'])}"),
                 Row(section="capacity", case=case,
                     comparison="per job (median): in the converter (delivery to settled) / of which ffmpeg; "
                                "raw ffmpeg's wall per job",
                     value=f"{seconds(stack['in_converter'])} / {seconds(stack['in_ffmpeg'])}",
                     baseline=seconds(raw["seconds"] / RAW_SAMPLE * converters)),
                 Row(section="capacity", case=case, comparison="jobs done exactly once",
                     value=f"{stack['done_once']} of {stack['jobs']}",
                     verdict=verdict(stack["done_once"] == stack["jobs"])),
                 Row(section="capacity", case=case,
                     comparison="CPU per job: the stack's process (gateway, converters, mongomock, this benchmark's "
                                "threads) + its children (curl uploads, ffmpeg) / raw ffmpeg's",
                     value=f"{stack['stack_cpu_per_job']:.2f} s + {stack['children_cpu_per_job']:.2f} s",
                     baseline=f"{raw['ffmpeg_cpu_per_job']:.2f} s",
                     result=f"{cpu_ratio(stack, raw):.2f}x"),
                 Row(section="capacity", case=case,
                     comparison="peak RSS of the stack's process (all services + stored videos)",
                     value=f"{stack['stack_peak_rss_mb']:.0f} MB",
                     baseline=f"{stack['stack_rss_before_mb']:.0f} MB before")]
    return rows, results
