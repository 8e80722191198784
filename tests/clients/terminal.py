"""A program in a real terminal (a pty), as a person runs it: it sees a TTY, gets a window size,
answers prompts, and Ctrl-C reaches it through the terminal driver."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class Screen:
    exit_code: int
    raw: str

    @property
    def text(self) -> str:
        """What was written, without the terminal's control sequences."""
        return ANSI.sub("", self.raw)


def run_in_terminal(argv: list[str], env: dict[str, str], answers: list[tuple[str, str]] = (),
                    ctrl_c_when: str | None = None, timeout: float = 180) -> Screen:
    """Run argv in a 120x40 terminal; when the output shows each `answers` prompt, type its answer;
    when it shows `ctrl_c_when`, press Ctrl-C. Returns once the program exits."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        # As from a user's shell: a run started in the background (CI) inherits SIGINT ignored,
        # and Python then never turns Ctrl-C into KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.execve(argv[0], argv, env)  # noqa: S606 (argv is the program itself, no shell)
    pending, output, deadline = list(answers), b"", time.monotonic() + timeout
    interrupted = False
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the program exited and the terminal closed
                break
            if not data:
                break
            output += data
            text = ANSI.sub("", output.decode(errors="replace"))
            if pending and pending[0][0] in text:
                os.write(fd, (pending.pop(0)[1] + "\r").encode())
            if ctrl_c_when and not interrupted and ctrl_c_when in text:
                os.write(fd, b"\x03")
                interrupted = True
        else:
            os.kill(pid, 9)
            raise AssertionError(f"{argv} did not finish in {timeout} s; it showed:\n{output.decode(errors='replace')}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return Screen(os.waitstatus_to_exitcode(status), output.decode(errors="replace"))
