"""8. Fair when busy: user A uploads five 5-minute videos, then user B a 30-second clip.

B's upload->done (from the start of B's upload to its MP3's announcement, the `<mp3 queue> send` span)
against what B cannot avoid waiting for: one of A's conversions (the one in progress when B arrives)
plus B's own (each the converter's `<video queue> process` span; A's the median of its five). One
converter. Target <= 1.2x.

The baseline, in the same run and on the same stack: the same uploads with the gateway publishing
without priorities (gateway.fairness.priority replaced by one that gives none), which is the first-in
first-out queue of before: B waits for all five of A's. The two modes alternate over the repetitions.
"""

import contextlib
import sys
import time

from bench.camera import mongodb_label
from bench.inputs import Video
from bench.job_spans import add_users, collect, job_trace, logged_in
from bench.stack import delete_files, running_stack
from bench.util import Row, Stopwatch, median, rotate, seconds, verdict

LONG = Video("5 min 320x240", 300, "320x240", 25)
QUICK_LONG = Video("90 s 320x240", 90, "320x240", 25)
CLIP = Video("30 s 320x240", 30, "320x240", 25)
A_UPLOADS = 5
TARGET = 1.2


@contextlib.contextmanager
def first_in_first_out():
    """The gateway publishes without priorities while this lasts."""
    from gateway import fairness

    rule = fairness.priority
    fairness.priority = lambda active, lowest_queued: None
    try:
        yield
    finally:
        fairness.priority = rule


def one_round(a, b, env: dict, long_path, clip_path) -> dict:
    queues = env["VIDEO_QUEUE"], env["MP3_QUEUE"]
    awaited = (f"{queues[1]} send", f"{queues[0]} process")
    with Stopwatch() as watch:
        a_jobs = [a.upload(long_path) for _ in range(A_UPLOADS)]
        b_start = time.time()
        b_job = b.upload(clip_path)
        b_trace = job_trace(b_job, *awaited)
        a_traces = [job_trace(job, *awaited) for job in a_jobs]
    b_done = b_trace.end(awaited[0])
    a_conversions = [t.end(awaited[1]) - t.start(awaited[1]) for t in a_traces]
    b_conversion = b_trace.end(awaited[1]) - b_trace.start(awaited[1])
    b_waited = b_done - b_start
    before_b = sum(t.start(awaited[1]) < b_trace.start(awaited[1]) for t in a_traces)
    for job in (*a_jobs, b_job):
        delete_files(env, job)
    reference = median(a_conversions) + b_conversion
    return {"b_upload_to_done": b_waited, "a_conversion": median(a_conversions), "b_conversion": b_conversion,
            "reference": reference, "ratio": b_waited / reference, "a_jobs_before_b": before_b,
            "other_cores": watch.others}


def run(quick: bool) -> tuple[list[Row], dict]:
    long_video = QUICK_LONG if quick else LONG
    repeats = 1 if quick else 3
    long_path, clip_path = long_video.ensure(), CLIP.ensure()
    label = mongodb_label("memory")
    samples = {"fair": [], "fifo": []}
    with running_stack("fair", converters=1) as (stack, env):
        collect()
        a, b = (logged_in(stack, user) for user in add_users(env, 2))
        for repeat in range(repeats):
            for mode in rotate(list(samples), repeat):
                print(f"fairness: {mode}, round {repeat + 1}/{repeats}: A uploads {A_UPLOADS} x {long_video.label}, "
                      f"then B {CLIP.label}", file=sys.stderr, flush=True)
                with first_in_first_out() if mode == "fifo" else contextlib.nullcontext():
                    samples[mode].append(one_round(a, b, env, long_path, clip_path))
    fair, fifo = (median([s["ratio"] for s in samples[mode]]) for mode in ("fair", "fifo"))
    case = f"A: {A_UPLOADS} x {long_video.label}, then B: {CLIP.label}"

    def spread(mode):
        ratios = [s["ratio"] for s in samples[mode]]
        return f"{median(ratios):.2f}x" + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else "")

    rows = [Row(section="fairness", case=case,
                comparison=f"B upload->done / (one A conversion + B's) [{label}]",
                value=seconds(median([s["b_upload_to_done"] for s in samples["fair"]])),
                baseline=seconds(median([s["reference"] for s in samples["fair"]])), result=spread("fair"),
                target=f"<= {TARGET:.1f}x", verdict=verdict(fair <= TARGET), numbers={"ratio": fair}),
            Row(section="fairness", case=case, comparison="the same, first in first out (before)",
                value=seconds(median([s["b_upload_to_done"] for s in samples["fifo"]])),
                baseline=seconds(median([s["reference"] for s in samples["fifo"]])), result=spread("fifo"),
                numbers={"ratio": fifo}),
            Row(section="fairness", case=case, comparison="A's jobs converted before B's: fair / FIFO",
                value=str(median([s["a_jobs_before_b"] for s in samples["fair"]])),
                baseline=str(median([s["a_jobs_before_b"] for s in samples["fifo"]])))]
    return rows, {"input_a": long_video.label, "input_b": CLIP.label, "repeats": repeats, "samples": samples,
                  "mongodb": label}
