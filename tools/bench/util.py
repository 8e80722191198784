"""What the benchmarks share: where they keep things, clocks, medians, result rows, a streamed upload."""

import io
import os
import resource
import secrets
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / ".bench"
MB = 1000 * 1000
MIB = 1024 * 1024


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) plus that of every child it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def split_cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (all its threads), and that of the children it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes, steal included)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    """Wall and CPU seconds of a block: `with Stopwatch() as watch: ...; watch.wall, watch.cpu`.

    `others` is how many cores the rest of the machine kept busy meanwhile (other processes, the
    hypervisor's steal): a measure of how noisy the measurement was, read from /proc/stat.
    """

    def __enter__(self):
        self.wall = self.cpu = self.others = 0.0
        self._busy, self._cpu, self._wall = machine_busy_seconds(), cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu
        foreign = machine_busy_seconds() - self._busy - self.cpu
        self.others = max(0.0, foreign / self.wall) if self.wall > 0.05 else 0.0
        return False


def median(values) -> float:
    return statistics.median(values)


def ratio_text(ratios: list[float]) -> str:
    """The median ratio, with the middle half of the repetitions' ratios when there are enough."""
    if len(ratios) < 4:
        return f"{median(ratios):.2f}x"
    low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{median(ratios):.2f}x ({low:.2f}-{high:.2f})"


def rotate(items: list, by: int) -> list:
    """The same items, starting at another one: each repetition runs the variants in another order."""
    by %= len(items)
    return items[by:] + items[:by]


@dataclass
class Row:
    """One line of the results table: a comparison, its ratio (or difference), the target, the verdict."""

    section: str
    case: str
    comparison: str
    value: str
    baseline: str = ""
    result: str = ""
    target: str = ""
    verdict: str = "info"  # PASS, MISS, info or SKIP
    numbers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(rows: list[Row]) -> str:
    header = ("Benchmark", "Case", "Comparison", "Value", "Baseline", "Ratio", "Target", "Result")
    cells = [header] + [(r.section, r.case, r.comparison, r.value, r.baseline, r.result, r.target, r.verdict)
                        for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [" | ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    header = ("Benchmark", "Case", "Comparison", "Value", "Baseline", "Ratio", "Target", "Result")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join((r.section, r.case, r.comparison, r.value, r.baseline, r.result,
                                          r.target, r.verdict)) + " |")
    return "\n".join(lines)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


class MultipartUpload:
    """A multipart/form-data body with one file field, read from disk as it is sent (never whole).

    requests sends it with a Content-Length, as curl -F does, in blocks of a few KiB.
    """

    def __init__(self, path: Path, field_name: str = "file", content_type: str = "video/mp4"):
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
                f'filename="{path.name}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._length = len(head) + os.stat(path).st_size + len(tail)
        self._parts = [io.BytesIO(head), path.open("rb"), io.BytesIO(tail)]

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._length
        out = bytearray()
        while self._parts and len(out) < size:
            piece = self._parts[0].read(size - len(out))
            if piece:
                out += piece
            else:
                self._parts.pop(0).close()
        return bytes(out)

    def close(self) -> None:
        for part in self._parts:
            part.close()
        self._parts = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
