"""The converter's secrets stay in the converter: a process of the same user (what ffmpeg is, decoding
a stranger's file) cannot read them from /proc/<converter pid>/environ.

The converter runs for real (`python -m converter`), with a broker that does not answer so that it
stays up retrying; the reader is another process of the converter's user. Run as root, both are root
without capabilities (setpriv), as in its image the converter is a user without any: to the kernel's
check that is the same as two processes of one unprivileged user."""

import json
import os
import secrets
import subprocess
import sys
import time

from tests.servers import free_port, served_mongodb_uri

READ_ENVIRON = """
import sys
try:
    data = open(f"/proc/{sys.argv[1]}/environ", "rb").read()
except PermissionError:
    print("refused")
else:
    print("read", sys.argv[2].encode() in data)
"""


def unprivileged(argv: list[str]) -> list[str]:
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", *argv] if os.geteuid() == 0 else argv


def converter_started(env: dict[str, str]) -> subprocess.Popen:
    """`python -m converter`, once it is consuming (retrying its broker), so past its start-up."""
    process = subprocess.Popen(unprivileged([sys.executable, "-m", "converter"]), env=env, stdout=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if json.loads(line).get("message", "").startswith("RabbitMQ connection lost"):
            return process
        assert time.monotonic() < deadline, "the converter did not start"
    raise AssertionError(f"the converter exited with {process.wait()}")


def test_a_process_of_the_converters_user_cannot_read_its_environment(tmp_path):
    canary = f"CANARY_{secrets.token_hex(8)}"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path), canary: "a secret",
           "MONGODB_URI": served_mongodb_uri(), "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
           "METRICS_PORT": str(free_port()), "HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
           "CLEANUP_INTERVAL_SECONDS": "3600"}
    converter = converter_started(env)
    try:
        reader = subprocess.run(unprivileged([sys.executable, "-c", READ_ENVIRON, str(converter.pid), canary]),
                                capture_output=True, text=True, timeout=60)
        own = subprocess.run(unprivileged([sys.executable, "-c", READ_ENVIRON, "self", "PATH"]),
                             capture_output=True, text=True, timeout=60)
    finally:
        converter.terminate()
        converter.wait(30)
    assert own.stdout == "read True\n", own.stderr  # the reader can read what is its to read
    assert reader.stdout == "refused\n", reader.stdout + reader.stderr
