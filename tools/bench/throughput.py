"""4. Throughput: N short videos queued at once, with 1 and with 2 converter workers.

Each repetition runs, back to back:
- raw ffmpeg alone on the same N files, one at a time, then two at a time: how far the work itself
  scales on this machine (the reference);
- two stacks with the same configuration but for `converters` (scripts/run-local --converters N),
  1 then 2 workers. In each, one warm-up job, then the client uploads the N videos back to back
  (streamed, as fast as the gateway takes them); the clock runs from the start of the first upload
  to the moment the last job is marked done (bench_stack.Probe), and every job's status is then
  checked through GET /jobs/<id>.
The speed-up is the median of the repetitions' own ratios. CPU seconds are this process's (the
whole stack and the client) plus its ffmpeg children's.
"""

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.conversion import raw_ffmpeg
from bench.inputs import Video
from bench.stack import Client, probe, running_stack
from bench.util import Row, Stopwatch, median, seconds, verdict

TARGET = 1.7
CORES = os.cpu_count() or 1
SHORT = Video("20 s 320x240", 20, "320x240", 25)


def batch(client: Client, path, count: int) -> dict:
    with Stopwatch() as watch:
        start = time.perf_counter()
        job_ids = [client.upload(path) for _ in range(count)]
        finished = max(probe().wait(job_id).get("converted", 0.0) for job_id in job_ids)
    failed = [job_id for job_id in job_ids if client.job(job_id)["status"] != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} benchmark jobs did not finish: {failed}")
    # cores: how many cores this process and its ffmpeg children kept busy on average.
    return {"seconds": finished - start, "cpu": watch.cpu, "cores": watch.cpu / watch.wall,
            "other_cores": watch.others}


def raw_batch(path, count: int, parallel: int, work) -> dict:
    """The same conversions by raw ffmpeg alone, `parallel` at a time: the ceiling of the scaling."""
    def convert(index: int) -> None:
        raw_ffmpeg(path, work / f"raw-{index}.mp3")

    with Stopwatch() as watch, ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(convert, range(count)))
    return {"seconds": watch.wall, "cpu": watch.cpu, "cores": watch.cpu / watch.wall, "other_cores": watch.others}


def run(quick: bool) -> tuple[list[Row], dict]:
    count, repeats = (6, 2) if quick else (12, 3)
    path = SHORT.ensure()
    probe()
    samples = {1: [], 2: []}
    raw = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        raw_ffmpeg(path, Path(folder) / "warm.mp3")
        for repeat in range(repeats):
            print(f"throughput: {count} x {SHORT.label}, run {repeat + 1}/{repeats}: raw ffmpeg 1 and 2 at a time, "
                  "then the stack with 1 and 2 converters", file=sys.stderr, flush=True)
            for parallel in (1, 2):
                raw[parallel].append(raw_batch(path, count, parallel, Path(folder)))
            for workers in (1, 2):
                with running_stack(f"tp{workers}", converters=workers) as (stack, env):
                    client = Client(stack.gateway_url)
                    client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
                    batch(client, path, 1)  # warm-up
                    samples[workers].append(batch(client, path, count))
    one, two = (median([s["seconds"] for s in samples[n]]) for n in (1, 2))
    raw_one, raw_two = (median([s["seconds"] for s in raw[n]]) for n in (1, 2))
    # Ratios of each repetition's own pair (run back to back), then their median.
    speedup, raw_speedup = (median([a["seconds"] / b["seconds"] for a, b in zip(runs[1], runs[2], strict=True)])
                            for runs in (samples, raw))
    # 1 worker keeps `cores` busy (this process and its ffmpeg children): the work of the batch is
    # cores * one CPU seconds, and CORES cores cannot do it faster than in (cores * one) / CORES.
    cores = median([s["cores"] for s in samples[1]])
    bound = min(2.0, CORES / cores)
    # CPU seconds per job (this process, with the client, and its ffmpeg children), 1 at a time.
    cpu_per_job, raw_cpu_per_job = (median([s["cpu"] / count for s in runs[1]])
                                    for runs in (samples, raw))
    case = f"{count} x {SHORT.label}"
    rows = [Row(section="throughput", case=case, comparison="2 workers / 1 worker (jobs per second)",
                value=f"{count / two:.2f} jobs/s", baseline=f"{count / one:.2f} jobs/s", result=f"{speedup:.2f}x",
                target=f">= {TARGET:.2f}x", verdict=verdict(speedup >= TARGET),
                numbers={"one_worker_s": one, "two_workers_s": two, "speedup": speedup}),
            Row(section="throughput", case=case, comparison="raw ffmpeg alone: 2 at a time / 1 at a time",
                value=f"{count / raw_two:.2f} jobs/s", baseline=f"{count / raw_one:.2f} jobs/s",
                result=f"{raw_speedup:.2f}x", numbers={"one_s": raw_one, "two_s": raw_two, "speedup": raw_speedup}),
            Row(section="throughput", case=case, comparison="CPU per job: 1 worker / raw ffmpeg 1 at a time",
                value=seconds(cpu_per_job), baseline=seconds(raw_cpu_per_job),
                result=f"{cpu_per_job / raw_cpu_per_job:.2f}x",
                numbers={"value": cpu_per_job, "baseline": raw_cpu_per_job}),
            Row(section="throughput", case=case, comparison=f"bound: {CORES} cores / cores busy with 1 worker",
                value=f"{cores:.2f} cores", result=f"{bound:.2f}x", numbers={"cores": cores, "bound": bound})]
    return rows, {"videos": count, "input": SHORT.label, "file": path.name, "repeats": repeats,
                  "samples": {str(k): v for k, v in samples.items()},
                  "raw_ffmpeg": {str(k): v for k, v in raw.items()}, "target": TARGET}
