"""DEV_RELOAD under gunicorn, as compose watch runs auth and the gateway: a saved file is served by a new
worker, which imports only the service's own code, the master having imported every library beforehand
(each service's WARM, common.service; the gateway's master patched by gevent first). Seen from outside:
python's -X importtime prints each import of each process, and after the reload only the new worker
imports anything."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers import free_port, served_mongodb_uri, wait_answering

ROOT = Path(__file__).resolve().parents[2]
HEALTH = {"gateway": "gateway/gateway/api/health.py", "auth": "auth/auth/app.py"}
# The worker's own machinery (its HTTP parser, gevent's hub, the gthread worker's pool): a few milliseconds
# of every worker's start.
SERVER = ("gunicorn", "gunicorn_h1c", "gevent", "concurrent")
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)")


def served_edit(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).json().get("edited") == 1:
                return True
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    return False


@pytest.fixture
def service_under_reload(request, stack, stack_env, tmp_path):
    """`python -X importtime -m SERVICE` with DEV_RELOAD on a copy of services/ (first on the path); yields
    (the copy, its URL, its standard error's file)."""
    service = request.param
    code = tmp_path / "services"
    shutil.copytree(ROOT / "services", code, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    env = {**os.environ, **stack_env, "DEV_RELOAD": "true", "HTTP_WORKERS": "1",
           "PYTHONPATH": os.pathsep.join(str(code / part) for part in ("common", service))}
    if service == "gateway":
        env.update(GATEWAY_PORT=str(port), MONGODB_URI=served_mongodb_uri(), AUTH_SVC_ADDRESS=stack.auth_url,
                   VIDEO_QUEUE=stack_env["VIDEO_QUEUE"] + ".reload", MP3_QUEUE=stack_env["MP3_QUEUE"] + ".reload")
    else:
        env.update(AUTH_PORT=str(port))
    errors = tmp_path / "stderr"
    with errors.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", service], env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url, process, errors)
        yield code / HEALTH[service], url, errors
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.parametrize("service_under_reload", ["gateway", "auth"], indirect=True)
def test_a_saved_file_is_served_by_a_worker_that_imports_only_the_services_code(service_under_reload):
    source, url, errors = service_under_reload
    time.sleep(1)  # the reloader's first look, which records the files' times
    source.write_text(source.read_text().replace('jsonify(status="ok"', 'jsonify(status="ok", edited=1', 1))
    assert served_edit(url), "the edit was not served"

    after_reload = errors.read_text().split("Worker reloading", 1)[1]
    new_worker = after_reload.split("Booting worker", 1)[1]
    imported = [m[1] for line in new_worker.splitlines() if (m := IMPORT_LINE.match(line))]
    assert imported, "the new worker imported nothing: not observed"
    service = source.relative_to(source.parents[2]).parts[0]
    libraries = sorted({name for name in imported if name.split(".")[0] not in (service, "common", *SERVER)})
    assert not libraries, f"imported again at each reload, add them to {service}/__main__.py's WARM: {libraries}"
