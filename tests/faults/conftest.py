"""The fault suite: real faults (broker stopped, connections cut, processes signalled) against the
real RabbitMQ and MariaDB. Converters run as the test needs them: in this process, or as a real
`python -m converter` subprocess that can be signalled."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from common.consumer import consumer
from common.settings import ConverterSettings, load
from converter.__main__ import build as build_converter
from runlocal import mongo
from runlocal.throwaway import environment, running_stack
from sample_media import make_video
from tests.servers import ADMIN, ROOT, Client, free_port, served_mongodb_uri, stack_environment

SERVICE_PATHS = [str(ROOT / "services" / name) for name in ("common", "gateway")]


@pytest.fixture(scope="session")
def slow_video(tmp_path_factory) -> Path:
    """40 minutes of sound behind a tiny picture: several seconds to convert, quick to make."""
    return make_video(tmp_path_factory.mktemp("slow") / "slow.mkv", 2400, size="64x48", rate=1,
                      audio_codec="flac")


@pytest.fixture
def fault_env(servers, tmp_path_factory, request):
    return stack_environment(servers, tmp_path_factory, f"f{abs(hash(request.node.name)) % 10**6}",
                             SHUTDOWN_GRACE_SECONDS="30")


@pytest.fixture
def fault_stack(fault_env):
    """auth, gateway and notification in this process; no converter: each test brings its own."""
    with running_stack(fault_env, converters=0) as running:
        client = Client(running.gateway_url)
        assert client.login(*ADMIN).status_code == 200
        running.client = client
        yield running


class InProcessConverter:
    """A converter consumer on a thread of this process (shares the in-memory MongoDB)."""

    def __init__(self, env: dict[str, str], **overrides):
        with environment(env):
            settings = load(ConverterSettings, **overrides)
        self.stop_event = threading.Event()
        service = build_converter(settings, db=mongo.connect(settings.mongodb_uri, settings.mongodb_db))
        self.consumer = consumer(settings, service.queue, service.handler, service.publishes_to)
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop_event,), daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.consumer.consuming.wait(30), "converter never started consuming"
        return self

    def __exit__(self, *_exc):
        self.stop_event.set()
        self.thread.join(60)


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class TCPProxy:
    """Forwards 127.0.0.1:<port> to a target until cut; cutting drops every connection at once,
    as a crashed host or a pulled cable would, and refuses new ones. A new proxy on the same `port`
    is the host coming back."""

    def __init__(self, target_host: str, target_port: int, port: int = 0):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self):
        # close() alone leaves the socket listening while the accept thread is blocked on it.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@contextlib.contextmanager
def gunicorn_gateway(env: dict[str, str], auth_url: str, log_path: Path, workers: int = 2):
    """`python -m gateway` as the image runs it (gunicorn, its worker class and settings), on a free
    port, pointed at `auth_url`; yields (base URL, the gunicorn master's Popen)."""
    port = free_port()
    gateway_env = {**os.environ, **env, "MONGODB_URI": served_mongodb_uri(), "AUTH_SVC_ADDRESS": auth_url,
                   "GATEWAY_PORT": str(port),
                   "HTTP_WORKERS": str(workers), "PYTHONPATH": os.pathsep.join(SERVICE_PATHS)}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], env=gateway_env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/healthz") or process.poll() is not None, 60, "gunicorn to listen")
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield url, process
    finally:
        stop_process(process)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL after 30 s; a process that has exited already is left as it is."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
