"""6. Camera-sized videos: upload -> done at real bit rates, against raw ffmpeg, and the 10th upload.

Two inputs of the sizes phones and cameras write (bench_inputs.RealisticVideo):
  - 5 min 640x360 at about 2 Mbit/s with the MP4 index at the end (the converter must copy it to a
    temp file first: from a pipe ffmpeg cannot reach the index);
  - 5 min 1920x1080 at 12 Mbit/s, faststart (the converter pipes it from GridFS into ffmpeg).
Each repetition runs the pipeline (bench_pipeline.one_run: upload -> done, told by the probe) and
raw ffmpeg on the same file back to back, in a rotating order; the ratio is the median of the
repetitions' own ratios, as in benchmark 2. The client is curl (`curl -F file=@...`), in a process
of its own as a user's would be.

Then the large file is uploaded 10 times in a row on the same stack, leaving storage as the services
leave it (the converter drops each video once converted; MP3s and jobs stay), as a developer's
afternoon of run-local would: the 10th upload -> done against the 1st.

MongoDB: the in-process mongomock of scripts/run-local unless --mongodb names a server (for example
the compose stack's stand-in MongoDB, itself mongomock behind the wire protocol). Neither is a real
MongoDB server's figure, and the table says which one it was.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from bench.conversion import raw_ffmpeg
from bench.inputs import RealisticVideo
from bench.pipeline import one_run
from bench.stack import Client, probe, running_stack
from bench.util import MB, Row, Stopwatch, median, ratio_text, rotate, seconds, verdict

SMALL = RealisticVideo("5 min 360p 2 Mbit/s, moov at end", 300, "640x360", 2, faststart=False)
LARGE = RealisticVideo("5 min 1080p 12 Mbit/s, faststart", 300, "1920x1080", 12, faststart=True)
QUICK_SMALL = RealisticVideo("60 s 360p 2 Mbit/s, moov at end", 60, "640x360", 2, faststart=False)
QUICK_LARGE = RealisticVideo("60 s 1080p 12 Mbit/s, faststart", 60, "1920x1080", 12, faststart=True)
TARGETS = {"small": 1.10, "large": 1.50}
GOAL_LARGE = 1.25
REPEAT_TARGET = 1.10
MONGODB_ENV = "BENCH_MONGODB_URI"


def mongodb_label(uri: str) -> str:
    if uri == "memory":
        return "mongomock in-process (run-local)"
    where = uri.rsplit("@", 1)[-1].split("/", 1)[0]
    return f"MongoDB server at {where}, given by --mongodb"


def paired(client: Client, env: dict, video: RealisticVideo, runs: int, work: Path) -> dict:
    path = video.ensure()
    one_run(client, env, path)  # warm-up
    samples = {"pipeline": [], "raw ffmpeg": []}
    for index in range(runs):
        for name in rotate(list(samples), index):
            if name == "raw ffmpeg":
                with Stopwatch() as watch:
                    raw_ffmpeg(path, work / "floor.mp3")
                samples[name].append({"wall": watch.wall, "cpu": watch.cpu, "other_cores": watch.others})
            else:
                samples[name].append(one_run(client, env, path))
    ratios = [run["whole"] / raw["wall"] for run, raw in zip(samples["pipeline"], samples["raw ffmpeg"], strict=True)]
    split = {key: median([sample[key] for sample in samples["pipeline"]]) for key in samples["pipeline"][0]}
    return {"input": video.label, "file": path.name, "bytes": path.stat().st_size, "runs": runs,
            "samples": samples, "ratios": ratios, "ratio": median(ratios), "median": split,
            "raw": median([raw["wall"] for raw in samples["raw ffmpeg"]])}


def series(client: Client, env: dict, video: RealisticVideo, count: int) -> dict:
    """count uploads in a row; nothing is deleted by the bench between them."""
    path = video.ensure()
    runs = [one_run(client, env, path, keep_files=True) for _ in range(count)]
    return {"input": video.label, "count": count, "runs": runs,
            "ratio": runs[-1]["whole"] / runs[0]["whole"],
            "upload_ratio": runs[-1]["upload"] / runs[0]["upload"]}


def run(quick: bool) -> tuple[list[Row], dict]:
    small, large = (QUICK_SMALL, QUICK_LARGE) if quick else (SMALL, LARGE)
    runs, count = (3, 4) if quick else (5, 10)
    uri = os.environ.get(MONGODB_ENV, "memory")
    label = mongodb_label(uri)
    for video in (small, large):
        video.ensure()
    probe()
    results = {"mongodb": label}
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as folder, \
            running_stack("cam", converters=1, mongodb_uri=uri) as (stack, env):
        client = Client(stack.gateway_url, curl=True)
        client.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        for key, video in (("small", small), ("large", large)):
            print(f"camera: {video.label} x {runs}, interleaved with raw ffmpeg ({label})", file=sys.stderr, flush=True)
            results[key] = paired(client, env, video, runs, Path(folder))
        print(f"camera: {large.label}, {count} uploads in a row", file=sys.stderr, flush=True)
        results["series"] = series(client, env, large, count)
    rows = []
    for key, video in (("small", small), ("large", large)):
        data = results[key]
        target = TARGETS[key]
        goal = f" (goal {GOAL_LARGE:.2f}x)" if key == "large" else ""
        rows.append(Row(section="camera", case=f"{video.label}, {data['bytes'] / MB:.0f} MB",
                        comparison=f"upload->done / raw ffmpeg [{label}]", value=seconds(data["median"]["whole"]),
                        baseline=seconds(data["raw"]), result=ratio_text(data["ratios"]),
                        target=f"<= {target:.2f}x{goal}", verdict=verdict(data["ratio"] <= target),
                        numbers={"ratio": data["ratio"], "ratios": data["ratios"]}))
        split = data["median"]
        rows.append(Row(section="camera", case=video.label, comparison="its split (median)",
                        value="; ".join(f"{name} {seconds(split[name])}" for name in
                                        ("upload", "queue wait", "fetch", "conversion", "store", "notice")),
                        numbers=split))
    runs_data = results["series"]
    rows.append(Row(section="camera", case=f"{large.label} x {count}",
                    comparison=f"upload->done: upload {count} / upload 1 [{label}]",
                    value=seconds(runs_data["runs"][-1]["whole"]), baseline=seconds(runs_data["runs"][0]["whole"]),
                    result=f"{runs_data['ratio']:.2f}x (upload part {runs_data['upload_ratio']:.2f}x)",
                    target=f"<= {REPEAT_TARGET:.2f}x", verdict=verdict(runs_data["ratio"] <= REPEAT_TARGET),
                    numbers={"wholes": [run["whole"] for run in runs_data["runs"]],
                             "uploads": [run["upload"] for run in runs_data["runs"]]}))
    results["finished"] = time.time()
    return rows, results
