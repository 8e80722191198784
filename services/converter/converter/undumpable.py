"""The converter's process made undumpable, so that its secrets stay in it.

ffmpeg runs with an empty environment, but as the converter's own user: without this, a decoder
exploited by a crafted file could read /proc/<converter pid>/environ (RABBITMQ_URL and MONGODB_URI
with their passwords) or the converter's memory, as any process may of another of its user.
PR_SET_DUMPABLE 0 makes the kernel refuse that to everything but a process with CAP_SYS_PTRACE,
which the converter's user does not have. It lasts until exec, so ffmpeg itself is dumpable again,
holding nothing worth reading; it also means no core dump of the converter.
"""

import ctypes
import os
import sys

PR_SET_DUMPABLE = 4  # linux/prctl.h


def make_undumpable() -> None:
    if not sys.platform.startswith("linux"):
        return  # no /proc to read another process's environment from
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_DUMPABLE, 0): {os.strerror(error)}")
