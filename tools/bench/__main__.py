"""scripts/bench: the benchmarks of docs/benchmarks.md, on inputs it generates (cached in .bench/).

  1. conversion  the converter's conversion step against raw ffmpeg (the floor) and moviepy
  2. pipeline    upload -> done through scripts/run-local's wiring, split into its parts
  3. memory      the gateway's and the converter's peak memory, small against large input
  4. throughput  N short videos with 1 and with 2 converter workers
  5. streams     50 open event streams on one gateway process: logins and uploads, CPU, release
  6. camera      upload -> done of camera-sized videos (75 MB, 466 MB) against raw ffmpeg; the 10th upload
  7. overhead    a job's fixed cost from the services' spans (stored -> ffmpeg, ffmpeg -> done); 74 MB vs raw ffmpeg
  8. fairness    user A's five 5-minute videos, then user B's 30 s clip: B's wait, fair queue against FIFO
  9. capacity    20 users x three 3-minute phone clips, 1 and 2 converters: jobs/minute against raw ffmpeg
  10. ingest     the gateway's upload path (socket, multipart, GridFS) against a plain socket read of the body
  11. uploads    40 parallel 16 MiB uploads on one gateway process: peak memory, bounded against unbounded
  12. edit-to-live from saving a file to the new code answering: compose watch (gateway, auth, the converter
                 with a message in flight), run-local --reload and the devcontainer, split into sync, reload and
                 start

Each comparison is made side by side in the same run and reported as a ratio against its target.
The table is printed; the figures are saved as .bench/results-<time>.json (and .bench/latest.json,
.bench/latest.md). pipeline, throughput and streams need MySQL/MariaDB and RabbitMQ on 127.0.0.1 (or where
MYSQL_* and RABBITMQ_URL point), as the integration tests do; MongoDB is the in-process mongomock.
Run nothing else heavy meanwhile: every measurement records how busy the rest of the machine was.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.util import BENCH_DIR, Row, markdown_table, median, seconds, table

BENCHMARKS = ("conversion", "pipeline", "memory", "throughput", "streams", "camera", "overhead", "fairness",
              "capacity", "ingest", "uploads", "edit-to-live")
NEEDS_SERVERS = ("pipeline", "throughput", "streams", "camera", "overhead", "fairness", "capacity", "uploads",
                 "edit-to-live")
NOISY_CORES = 0.15


def machine() -> dict:
    import imageio_ffmpeg

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    memory = ""
    if Path("/proc/meminfo").exists():
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{total_kib / 1024 / 1024:.1f} GiB"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cores": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "ffmpeg": version.replace("ffmpeg version ", "").split(" Copyright")[0] + " (imageio-ffmpeg)",
    }


def machine_line(info: dict) -> str:
    return (f"{info['cores']} cores, {info['cpu']}, {info['memory']} RAM, {info['os']}, "
            f"Python {info['python']}, ffmpeg {info['ffmpeg']}")


def other_cores(data) -> list[float]:
    """Every `other_cores` figure in a benchmark's results: how busy the rest of the machine was."""
    if isinstance(data, dict):
        found = [data["other_cores"]] if isinstance(data.get("other_cores"), float) else []
        return found + [v for value in data.values() if not isinstance(value, float) for v in other_cores(value)]
    if isinstance(data, list):
        return [v for value in data for v in other_cores(value)]
    return []


def noise_note(results: dict) -> str:
    figures = other_cores(results["benchmarks"])
    if not figures:
        return ""
    middle = median(figures)
    results["other_cores_median"] = middle
    note = (f"Other processes kept {middle:.2f} of {os.cpu_count()} cores busy during the median measurement "
            f"({len(figures)} measurements, /proc/stat).")
    if middle > NOISY_CORES:
        note += " The machine was not idle: wall times and ratios are not reliable; rerun when it is."
    return note


def split_table(data: dict) -> str:
    from bench.pipeline import PARTS

    lines = []
    for key in ("long", "clip"):
        result = data.get(key)
        if result:
            m = result["median"]
            parts = "  ".join(f"{name} {seconds(m[name])}" for name in PARTS)
            lines.append(f"  {result['input']} (median of {result['runs']}): {parts}  = whole {seconds(m['whole'])}")
    return "\n".join(lines)


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="shorter inputs, fewer repetitions: about two minutes instead of eight")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only this benchmark ({'|'.join(BENCHMARKS)}); may be repeated")
    parser.add_argument("--mongodb", metavar="URI",
                        help="camera benchmark only: store in the MongoDB server at URI instead of the in-process "
                             "mongomock (e.g. the compose stack's; the table names which was used)")
    parser.add_argument("--users", type=int, metavar="N",
                        help="capacity benchmark only: N users instead of 20 (quick: 5); each user's three "
                             "videos wait in the in-process mongomock until converted, in memory")
    return parser.parse_args(argv)


def run_one(name: str, quick: bool) -> tuple[list[Row], dict]:
    from importlib import import_module

    if name in NEEDS_SERVERS:
        from runlocal.throwaway import server_env, unreachable

        missing = unreachable(server_env())
        if missing:
            reason = f"{' and '.join(missing)} not reachable (set MYSQL_* / RABBITMQ_URL)"
            return [Row(section=name, case="", comparison="skipped", value=reason, verdict="SKIP")], \
                {"skipped": reason}
    return import_module(f"bench.{name.replace('-', '_')}").run(quick)


def main(argv=None) -> int:
    args = parse(argv)
    if args.mongodb:
        from bench.camera import MONGODB_ENV

        os.environ[MONGODB_ENV] = args.mongodb
    if args.users:
        from bench.capacity import USERS_ENV

        os.environ[USERS_ENV] = str(args.users)
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    started = datetime.now(UTC)
    info = machine()
    print(f"scripts/bench{' --quick' if args.quick else ''}: {', '.join(selected)}", file=sys.stderr)
    print(f"machine: {machine_line(info)}", file=sys.stderr, flush=True)
    rows: list[Row] = []
    results = {"started": started.isoformat(timespec="seconds"), "mode": "quick" if args.quick else "full",
               "machine": info, "load_average_at_start": os.getloadavg(), "benchmarks": {}}
    failed = False
    for name in selected:
        began = time.monotonic()
        try:
            bench_rows, data = run_one(name, args.quick)
        except (Exception, SystemExit) as error:  # one broken benchmark still leaves the others' figures
            traceback.print_exc()
            bench_rows, data = [Row(section=name, case="", comparison="failed", value=repr(error)[:200],
                                    verdict="ERROR")], {"error": repr(error)}
            failed = True
        data["seconds"] = time.monotonic() - began
        rows += bench_rows
        results["benchmarks"][name] = {**data, "rows": [row.as_dict() for row in bench_rows]}
    results["load_average_at_end"] = os.getloadavg()
    results["seconds"] = (datetime.now(UTC) - started).total_seconds()

    print()
    print(table(rows))
    pipeline = results["benchmarks"].get("pipeline", {})
    if "clip" in pipeline:
        print("\npipeline split:\n" + split_table(pipeline))
    note = noise_note(results)
    print(f"\nmachine: {machine_line(info)}")
    if note:
        print(note)
    BENCH_DIR.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = BENCH_DIR / f"results-{stamp}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (BENCH_DIR / "latest.json").write_text(text)
    markdown = [f"Machine: {machine_line(info)}. Mode: {results['mode']}, {started:%Y-%m-%d}.", "",
                markdown_table(rows)]
    if "clip" in pipeline:
        markdown += ["", "Pipeline split:", "", split_table(pipeline)]
    if note:
        markdown += ["", note]
    (BENCH_DIR / "latest.md").write_text("\n".join(markdown) + "\n")
    print(f"saved {path.relative_to(BENCH_DIR.parent)} (and .bench/latest.json, .bench/latest.md) "
          f"in {results['seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
