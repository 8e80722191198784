"""The services run with nothing writable but /tmp, as in compose.yaml (read_only, a tmpfs /tmp) and the
manifests (readOnlyRootFilesystem, an emptyDir /tmp): so their code can be owned by root and never change.

Here a mount namespace makes this machine's root filesystem read-only under the processes, with a fresh
tmpfs on /tmp (as root: `unshare --mount`; skipped with the reason elsewhere). The images themselves are
started read-only by the users' CI (.github/workflows/ci.yml, on arm64 too).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port, ready_run_local, served_mongodb_uri, wait_answering

ROOT = Path(__file__).resolve().parents[2]
# The checkout (code and .venv) stays visible, read-only, even where it lives under /tmp: it is parked on
# a bind mount in /dev/shm while the fresh tmpfs covers /tmp, then bound back to its own path.
_READ_ONLY_ROOT_SCRIPT = """
set -e
mount --bind / / && mount -o remount,bind,ro /
case "$CHECKOUT/" in
  /tmp/*)
    parked=$(mktemp -d /dev/shm/read-only-checkout.XXXXXX)
    mount --bind "$CHECKOUT" "$parked"
    mount -t tmpfs tmpfs /tmp
    mkdir -p "$CHECKOUT" && mount --bind "$parked" "$CHECKOUT" && mount -o remount,bind,ro "$CHECKOUT"
    umount "$parked" && rmdir "$parked" ;;
  *) mount -t tmpfs tmpfs /tmp ;;
esac
exec "$@"
"""
READ_ONLY_ROOT = ("env", f"CHECKOUT={ROOT}", "unshare", "--mount", "--propagation", "private",
                  "sh", "-c", _READ_ONLY_ROOT_SCRIPT, "sh")


@pytest.fixture(scope="module")
def read_only_root():
    try:
        probe = subprocess.run([*READ_ONLY_ROOT, "sh", "-c", f"! touch {ROOT}/.read-only-probe && touch /tmp/ok"],
                               capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("needs util-linux's unshare to make the root filesystem read-only")
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only root here (needs root and mount namespaces): {probe.stderr.strip()}")
    return READ_ONLY_ROOT


def test_the_whole_flow_works_with_nothing_writable_but_tmp(stack_env, read_only_root, samples):
    env = {**stack_env, "MYSQL_DB": stack_env["MYSQL_DB"] + "_ro", "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + ".ro",
           "MP3_QUEUE": stack_env["MP3_QUEUE"] + ".ro", "HEARTBEAT_FILE": "/tmp/heartbeat"}
    with ready_run_local(env, prefix=read_only_root) as (_process, client):
        upload = client.upload(samples["video.mkv"])
        assert upload.status_code == 202, upload.text
        job = client.wait_final(upload.json()["job_id"], timeout=120)
        assert job["status"] == "done", job
        mp3 = client.download(job["mp3_fid"])
        assert mp3.status_code == 200 and len(mp3.content) > 10_000


def test_gunicorn_serves_with_nothing_writable_but_tmp_and_says_nothing_about_it(stack_env, read_only_root,
                                                                                 tmp_path):
    """No control socket, no worker temp file outside /dev/shm, no bytecode: nothing to write."""
    port = free_port()
    env = {**os.environ, **stack_env, "MONGODB_URI": served_mongodb_uri(), "GATEWAY_PORT": str(port),
           "HOME": "/nonexistent",
           "AUTH_SVC_ADDRESS": "http://127.0.0.1:9", "HTTP_WORKERS": "2"}
    log = tmp_path / "gateway.log"
    with log.open("w") as out:
        process = subprocess.Popen([*read_only_root, sys.executable, "-m", "gateway"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_answering(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.terminate()
        process.wait(30)
    output = log.read_text()
    for complaint in ("Read-only file system", "Permission denied", "Control server error"):
        assert complaint not in output, output
