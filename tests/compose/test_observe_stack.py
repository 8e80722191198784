"""The compose profile `observe` for real: one upload through the stack, then Prometheus has scraped every
service and every query of the dashboard answers, the upload is one trace across the four services in
Jaeger, and Grafana serves the dashboard.

It runs what this machine can have. Jaeger and Grafana cannot be pulled where no registry is reachable,
and no honest stand-in exists for them (no Debian, PyPI or npm package is Jaeger or Grafana): their tests
are skipped with that reason, and the traces are then read where the services print them instead
(OTEL_TRACES_EXPORTER=console, in the containers' logs). Prometheus has a stand-in (Debian's, built by
scripts/standins).
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from compose_engine import compose_command, engine_problem

PROBLEM = engine_problem()
if PROBLEM:
    pytest.skip(f"compose observe suite not run: {PROBLEM}. It needs a Docker engine.", allow_module_level=True)

pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
APPS = ("auth", "gateway", "converter", "notification")
BACKENDS = ("mysql", "mongodb", "rabbitmq")
NO_STANDIN = {
    "jaeger": "Jaeger is packaged neither by Debian nor on PyPI or npm, so scripts/standins has no honest stand-in",
    "grafana": "Grafana is packaged neither by Debian nor on PyPI or npm, so scripts/standins has no honest stand-in",
    "prometheus": "run scripts/standins to build its stand-in from Debian's Prometheus",
}
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
DASHBOARD = ROOT / "observability/grafana/dashboards/mp3converter.json"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose_images() -> dict[str, str]:
    import yaml

    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {name: service["image"] for name, service in services.items() if "observe" in service.get("profiles", [])}


def obtainable(image: str) -> bool:
    """The image is here, or can be pulled (as on a machine that reaches Docker Hub)."""
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return True
    try:
        return subprocess.run(["docker", "pull", "--quiet", image], capture_output=True, timeout=600).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def unavailable() -> dict[str, str]:
    """{tool: why it cannot run here} for the tools of the profile whose image cannot be had."""
    return {name: f"{image} is not on this machine and no registry here can supply it; {NO_STANDIN[name]}"
            for name, image in compose_images().items() if not obtainable(image)}


@pytest.fixture(scope="module")
def unavailable_tools(container_images) -> dict[str, str]:
    """Decided once the stand-ins are built (on a fresh machine, Prometheus's is made by then)."""
    return unavailable()


def needs(tool: str):
    return pytest.mark.usefixtures(f"needs_{tool}")


def skip_without(tool: str, unavailable_tools: dict[str, str]) -> None:
    if tool in unavailable_tools:
        pytest.skip(unavailable_tools[tool])


@pytest.fixture
def needs_prometheus(unavailable_tools):
    skip_without("prometheus", unavailable_tools)


@pytest.fixture
def needs_jaeger(unavailable_tools):
    skip_without("jaeger", unavailable_tools)


@pytest.fixture
def needs_grafana(unavailable_tools):
    skip_without("grafana", unavailable_tools)


@pytest.fixture(scope="module")
def observe_stack(tmp_path_factory, unavailable_tools):
    if "prometheus" in unavailable_tools and os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the Prometheus stand-in: {unavailable_tools['prometheus']}")
    env_file = tmp_path_factory.mktemp("observe") / ".env"
    subprocess.run([sys.executable, str(ROOT / "scripts/init-env"), "--output", str(env_file)], check=True,
                   capture_output=True)
    values = {m.group(1): m.group(2) for line in env_file.read_text().splitlines() if (m := ASSIGNMENT.match(line))}
    ports = {name: str(free_port()) for name in ("GATEWAY_PORT", "RABBITMQ_UI_PORT", "JAEGER_UI_PORT",
                                                 "OTLP_HTTP_PORT", "PROMETHEUS_UI_PORT", "GRAFANA_UI_PORT")}
    # As `scripts/up --observe` does; without Jaeger, the spans are printed in the containers' logs instead.
    exporter = "console" if "jaeger" in unavailable_tools else "otlp"
    values.update(ports, OTEL_TRACES_EXPORTER=exporter)
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    unset = [arg for name in sorted({*values, "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME",
                                     "COMPOSE_ENV_FILES"}) for arg in ("-u", name)]
    prefix = ["env", *unset, *shlex.split(compose_command()), "--env-file", str(env_file),
              "-f", str(ROOT / "compose.yaml"), "-p", f"mp3converter-observe-{os.getpid()}", "--profile", "observe"]

    def compose(arguments: str, timeout=900) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *arguments.split()], capture_output=True, text=True, timeout=timeout)

    tools = [name for name in compose_images() if name not in unavailable_tools]
    up = compose(f"up --build --wait --wait-timeout 600 {' '.join([*BACKENDS, *APPS, *tools])}")
    try:
        if up.returncode != 0:
            logs = compose("logs --no-color --tail=100").stdout
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{logs[-6000:]}")
        yield {"compose": compose, "values": values, "exporter": exporter,
               "gateway": f"http://127.0.0.1:{ports['GATEWAY_PORT']}",
               "prometheus": f"http://127.0.0.1:{ports['PROMETHEUS_UI_PORT']}",
               "jaeger": f"http://127.0.0.1:{ports['JAEGER_UI_PORT']}",
               "grafana": f"http://127.0.0.1:{ports['GRAFANA_UI_PORT']}"}
    finally:
        compose("down --volumes --remove-orphans --timeout 30", timeout=300)


@pytest.fixture(scope="module")
def uploaded(observe_stack, tmp_path_factory) -> dict:
    """One upload, converted: the job as the gateway shows it."""
    import imageio_ffmpeg

    video = tmp_path_factory.mktemp("media") / "observe.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video)], check=True, timeout=120)
    gateway, values = observe_stack["gateway"], observe_stack["values"]
    deadline = time.monotonic() + 300
    while not ready(gateway):
        assert time.monotonic() < deadline, "the gateway never became ready"
        time.sleep(1)
    token = requests.post(f"{gateway}/login", auth=(values["ADMIN_EMAIL"], values["ADMIN_PASSWORD"]), timeout=30).text
    headers = {"Authorization": f"Bearer {token}"}
    with video.open("rb") as body:
        response = requests.post(f"{gateway}/upload", headers=headers, files={"file": (video.name, body)}, timeout=60)
    assert response.status_code == 202, response.text
    while True:
        job = requests.get(f"{gateway}/jobs/{response.json()['job_id']}", headers=headers, timeout=30).json()
        if job["status"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(1)
    assert job["status"] == "done", job
    return job


def ready(gateway: str) -> bool:
    try:
        return requests.get(f"{gateway}/readyz", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def prometheus_query(url: str, expression: str) -> list:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10).json()
    assert answer["status"] == "success", (expression, answer)
    return answer["data"]["result"]


@needs("prometheus")
def test_prometheus_scrapes_every_service(observe_stack):
    url = observe_stack["prometheus"]
    deadline = time.monotonic() + 120
    while True:
        targets = requests.get(f"{url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {target["labels"]["job"]: target["health"] for target in targets}
        if all(health.get(name) == "up" for name in APPS):
            break
        assert time.monotonic() < deadline, f"not every service is scraped: {health}"
        time.sleep(2)


@needs("prometheus")
def test_the_dashboards_numbers_after_one_upload(observe_stack, uploaded):
    url = observe_stack["prometheus"]
    deadline = time.monotonic() + 60

    def numbers() -> dict:
        done = prometheus_query(url, 'sum(mp3converter_jobs_finished_total{status="done"})')
        uploads = prometheus_query(url, "sum(mp3converter_uploads_total)")
        depths = {row["metric"]["queue"]: float(row["value"][1])
                  for row in prometheus_query(url, "mp3converter_queue_messages")}
        return {"done": float(done[0]["value"][1]) if done else None,
                "uploads": float(uploads[0]["value"][1]) if uploads else None,
                "video": depths.get("video"), "mp3": depths.get("mp3")}

    # Each service is scraped every 5 s on its own schedule: the converter's scrape after the job was done
    # may come before the gateway's first one after the upload, so wait until every number has been seen.
    expected = {"done": 1, "uploads": 1, "video": 0, "mp3": 0}
    while (seen := numbers()) != expected:
        assert time.monotonic() < deadline, f"the dashboard's numbers never reached {expected}: {seen}"
        time.sleep(2)
    # Every query of the provisioned dashboard is valid PromQL and answers.
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            prometheus_query(url, target["expr"].replace("$__range", "5m"))


def span_lines(observe_stack) -> list[dict]:
    logs = observe_stack["compose"](f"logs --no-color --no-log-prefix {' '.join(APPS)}").stdout
    return [json.loads(line) for line in logs.splitlines() if line.startswith('{"name"')]


def traces(observe_stack) -> list[tuple[set, set]]:
    """Each trace that reached notification: (its services, the db.system of its database spans)."""
    if observe_stack["exporter"] == "otlp":
        found = requests.get(f"{observe_stack['jaeger']}/api/traces",
                             params={"service": "notification", "limit": 20}, timeout=10).json()["data"]
        return [({p["serviceName"] for p in trace["processes"].values()},
                 {tag["value"] for span in trace["spans"] for tag in span["tags"] if tag["key"] == "db.system"})
                for trace in found]
    by_trace: dict[str, tuple[set, set]] = {}  # no Jaeger here: the spans the services printed
    for span in span_lines(observe_stack):
        services, systems = by_trace.setdefault(span["context"]["trace_id"], (set(), set()))
        services.add(span["resource"]["attributes"]["service.name"])
        systems.add(span["attributes"].get("db.system"))
    return list(by_trace.values())


def test_one_upload_is_one_trace_across_the_four_containers(observe_stack, uploaded):
    """With a MongoDB server, the pymongo instrumentation's spans are in it too (GridFS chunks, the job)."""
    deadline = time.monotonic() + 60
    while True:
        found = traces(observe_stack)
        if any(services == set(APPS) and "mongodb" in systems for services, systems in found):
            return
        assert time.monotonic() < deadline, f"no trace spans the four services and MongoDB: {found}"
        time.sleep(2)


@needs("jaeger")
def test_jaeger_serves_its_ui(observe_stack):
    response = requests.get(observe_stack["jaeger"], timeout=10)
    assert response.status_code == 200 and "<html" in response.text.lower()


@needs("grafana")
def test_grafana_serves_the_provisioned_dashboard(observe_stack, uploaded):
    grafana = observe_stack["grafana"]
    assert requests.get(f"{grafana}/api/health", timeout=10).json()["database"] == "ok"
    dashboard = requests.get(f"{grafana}/api/dashboards/uid/mp3converter", timeout=10).json()["dashboard"]
    assert dashboard["title"] == "mp3converter"
    for uid in ("prometheus", "jaeger"):
        health = requests.get(f"{grafana}/api/datasources/uid/{uid}/health", timeout=30).json()
        assert health["status"] == "OK", (uid, health)
