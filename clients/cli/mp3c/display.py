"""How mp3c shows the work in flight: progress bars on a terminal, one plain line per change of
state anywhere else (pipes, CI logs)."""

import re
import sys
import threading

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

# Control characters (C0, DEL, C1) and the bidirectional overrides: in a terminal they are commands
# (clear the screen, set the window title, reorder what follows), and a server's text must not give any.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text) -> str:
    """Text from the server (or a file name) as it may be written to a terminal: each control
    character replaced by U+FFFD. Rich is always given it with markup off, so brackets stay brackets."""
    return _CONTROLS.sub("\ufffd", str(text))


class Lines:
    """One line per state change, for pipes and logs. Failures go to stderr."""

    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return None

    def track(self, name: str, size: int) -> "LineTrack":
        return LineTrack(self, name, size)

    def say(self, text: str, error: bool = False) -> None:
        with self._lock:
            print(shown(text), file=sys.stderr if error else sys.stdout, flush=True)


class LineTrack:
    def __init__(self, lines: Lines, name: str, size: int):
        self._lines, self._name, self._size, self._state = lines, name, size, None

    def sent(self, _count: int) -> None:
        self.state("uploading")

    def state(self, status: str, _percent: int = 0) -> None:
        if status != self._state:
            self._state = status
            self._lines.say(f"{self._name}: {status}")

    def finished(self, text: str) -> None:
        self._lines.say(f"{self._name}: {text}")

    def failed(self, reason: str) -> None:
        self._lines.say(f"{self._name}: failed: {reason}", error=True)


class Bars:
    """A bar per file: bytes while uploading, then the conversion's percent."""

    def __init__(self):
        self._progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                                  TextColumn("{task.fields[status]}", markup=False), console=Console(),
                                  transient=False)

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *_exc):
        self._progress.stop()

    def track(self, name: str, size: int) -> "BarTrack":
        return BarTrack(self._progress, name, size)

    def say(self, text: str, error: bool = False) -> None:
        self._progress.console.print(shown(text), style="red" if error else None, highlight=False, markup=False)


class BarTrack:
    def __init__(self, progress: Progress, name: str, size: int):
        self._progress, self._name, self._size, self._sent = progress, name, size, 0
        self._task = progress.add_task(shown(name), total=size or 1, status="uploading")

    def sent(self, count: int) -> None:
        self._sent += count
        self._progress.update(self._task, completed=self._sent,
                              status=f"uploading {decimal(self._sent)} of {decimal(self._size)}")

    def state(self, status: str, percent: int = 0) -> None:
        self._progress.update(self._task, total=100, completed=percent, status=shown(status))

    def finished(self, text: str) -> None:
        self._progress.update(self._task, total=100, completed=100, status=shown(text))

    def failed(self, reason: str) -> None:
        self._progress.update(self._task, status="failed")
        self._progress.console.print(shown(f"{self._name}: failed: {reason}"), style="red", highlight=False,
                                     markup=False)


def for_terminal(stream=sys.stdout):
    return Bars() if stream.isatty() else Lines()
