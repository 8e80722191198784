"""scripts/ingress-cert: the local certificate of https://mp3converter.test/ works as the docs say.

A TLS server on 127.0.0.1 serves it; curl, given `--cacert tls.crt` as docs/kubernetes.md says and
`--resolve` for the Ingress's host, completes the handshake and verifies the name. The key is private.
"""

import http.server
import os
import shutil
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest

import ingress_cert

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts/ingress-cert"), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def served(tmp_path):
    """(folder with tls.crt and tls.key from the script, https port of a server using them)."""
    result = run_script("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tmp_path, server.server_address[1]
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def curl() -> str:
    found = shutil.which("curl")
    if found is None:
        pytest.skip("needs curl, the client docs/kubernetes.md uses")
    return found


def test_curl_trusts_the_certificate_for_the_ingress_host(served, curl):
    folder, port = served
    result = subprocess.run(
        [curl, "-sS", "--cacert", str(folder / "tls.crt"), "--resolve", f"{ingress_cert.HOST}:{port}:127.0.0.1",
         f"https://{ingress_cert.HOST}:{port}/healthz"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "ok", result.stderr


def test_curl_refuses_it_for_another_name_or_without_cacert(served, curl):
    folder, port = served
    other = subprocess.run(
        [curl, "-sS", "--cacert", str(folder / "tls.crt"), "--resolve", f"other.test:{port}:127.0.0.1",
         f"https://other.test:{port}/"], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    untrusted = subprocess.run([curl, "-sS", "--resolve", f"{ingress_cert.HOST}:{port}:127.0.0.1",
                                f"https://{ingress_cert.HOST}:{port}/"], capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and untrusted.returncode != 0


def test_the_key_is_private_and_an_existing_certificate_is_kept(tmp_path):
    assert run_script("--out", str(tmp_path)).returncode == 0
    assert stat.S_IMODE(os.stat(tmp_path / "tls.key").st_mode) == 0o600
    before = (tmp_path / "tls.crt").read_bytes()
    again = run_script("--out", str(tmp_path))
    assert again.returncode == 0 and "kept" in again.stdout
    assert (tmp_path / "tls.crt").read_bytes() == before
    assert run_script("--out", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "tls.crt").read_bytes() != before


def test_the_files_it_writes_are_never_committed():
    for name in ("tls.crt", "tls.key"):
        path = ingress_cert.FOLDER / name
        assert subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT).returncode == 0, name
