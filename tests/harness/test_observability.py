"""Jaeger, Prometheus and Grafana: the compose profile `observe`, the Kubernetes component and overlay, the
Tiltfile's --observe, and the configuration they share (observability/). Static, like the rest of the
harness: compose's own model, the real kustomize build, the Tiltfile with recorded builtins.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from common import metrics
from tests.harness.k8s_stack import APP_SERVICES, REPO_ROOT, build, container, named, pod_spec, stack_copy
from tests.harness.test_network import INTERNET, Policies, pods_of
from tests.harness.tilt_stubs import evaluate_tiltfile

OBSERVE = ("jaeger", "prometheus", "grafana")
PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")
# Where each service serves /metrics in its container: auth and gateway on their HTTP port, the consumers
# on METRICS_PORT.
METRICS_PORTS = {"auth": 5000, "gateway": 8080, "converter": 9464, "notification": 9464}
GRAFANA = REPO_ROOT / "observability/grafana"
DASHBOARD = GRAFANA / "dashboards/mp3converter.json"


def metric_names() -> set[str]:
    """Every series name the services expose: the registry's, and the queue depths read at scrape time."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    families = [*metrics.REGISTRY.collect(), *metrics.QueueDepths(None, ()).collect()]
    return {family.name + suffix for family in families for suffix in suffixes.get(family.type, ())}


# --- compose ------------------------------------------------------------------------------------------


def test_nothing_of_it_runs_unless_asked(compose_config, compose_env_file):
    default = compose_config(env_file=compose_env_file)["services"]
    assert not set(OBSERVE) & set(default)
    assert not any(name in str(service.get("depends_on", {})) for service in default.values() for name in OBSERVE)


def test_images_are_pinned_and_the_same_in_kubernetes(compose_model, tmp_path, make_env):
    component = build(stack_copy(tmp_path / "repo", make_env()) / "manifests/overlays/observe")
    deployments = named(component, "Deployment")
    for name in OBSERVE:
        image = compose_model["services"][name]["image"]
        assert PINNED_IMAGE.match(image), f"{name}: {image} is not pinned to a full version"
        assert container(deployments[name])["image"] == image, name


def test_the_uis_are_on_the_loopback_only(compose_model):
    published = {name: {(p.get("host_ip"), int(p["target"])) for p in compose_model["services"][name]["ports"]}
                 for name in OBSERVE}
    assert published == {"jaeger": {("127.0.0.1", 16686), ("127.0.0.1", 4318)}, "prometheus": {("127.0.0.1", 9090)},
                         "grafana": {("127.0.0.1", 3000)}}
    for name in OBSERVE:
        service = compose_model["services"][name]
        assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"], name


def test_the_services_send_their_spans_to_the_profiles_jaeger(compose_model):
    jaeger_otlp = int(compose_model["services"]["jaeger"]["command"][-1].rsplit(":", 1)[1])
    assert jaeger_otlp == 4318
    for name in APP_SERVICES:
        environment = compose_model["services"][name]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{jaeger_otlp}", name
        assert environment["OTEL_SERVICE_NAME"] == name


def test_prometheus_scrapes_every_service_where_it_serves_its_metrics(compose_model):
    mounts = {m["target"]: m for m in compose_model["services"]["prometheus"]["volumes"]}
    config_mount = mounts["/etc/prometheus/prometheus.yml"]
    assert config_mount["read_only"] is True
    config = yaml.safe_load(Path(config_mount["source"]).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in METRICS_PORTS.items():
        [sd] = jobs[name]["dns_sd_configs"]
        assert (sd["names"], sd["type"], sd["port"]) == ([name], "A", port), name
        environment = compose_model["services"][name]["environment"]
        served_on = environment.get("METRICS_PORT") or environment.get("AUTH_PORT") or environment["GATEWAY_PORT"]
        assert int(served_on) == port, name


def test_gunicorns_metrics_folder_is_writable_and_in_memory_in_compose(compose_model):
    """The containers' root filesystem is read-only: the folder compose names must be on their tmpfs."""
    for name in ("auth", "gateway"):
        service = compose_model["services"][name]
        assert service["read_only"] is True
        mounts = [entry.split(":")[0] for entry in service["tmpfs"]]
        folder = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert any(folder.startswith(mount.rstrip("/") + "/") for mount in mounts), name


def test_the_consumers_count_in_memory(compose_model):
    """prometheus_client turns multiprocess mode on when PROMETHEUS_MULTIPROC_DIR is there at all, even
    empty; a consumer is one process and serves its own /metrics, so it must not have it."""
    for name in ("converter", "notification"):
        assert "PROMETHEUS_MULTIPROC_DIR" not in compose_model["services"][name]["environment"], name


def test_grafana_is_provisioned_from_observability(compose_model):
    service = compose_model["services"]["grafana"]
    mounts = {m["target"]: Path(m["source"]) for m in service["volumes"] if m.get("read_only")}
    assert mounts == {"/etc/grafana/provisioning": GRAFANA / "provisioning",
                      "/etc/grafana/dashboards": GRAFANA / "dashboards"}
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == ["/etc/grafana/dashboards"]
    home = service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"/etc/grafana/dashboards/{DASHBOARD.name}"


# --- the dashboard --------------------------------------------------------------------------------------


def test_the_dashboard_shows_what_was_asked_from_metrics_the_services_have():
    dashboard = json.loads(DASHBOARD.read_text())
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yaml").read_text())
    uids = {source["uid"]: source for source in sources["datasources"]}
    assert {uids["prometheus"]["url"], uids["jaeger"]["url"]} == {"http://prometheus:9090", "http://jaeger:16686"}
    expressions = {}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        expressions[panel["title"]] = [target["expr"] for target in panel["targets"]]
    used = {name for exprs in expressions.values() for expr in exprs
            for name in re.findall(r"\b((?:mp3converter|http_server)_[a-z_]+)\b", expr)}
    assert used and used <= metric_names(), f"not exposed by the services: {used - metric_names()}"
    text = json.dumps(expressions)
    for wanted in ("mp3converter_uploads_total", 'status=\\"done\\"', 'status=\\"failed\\"',
                   "histogram_quantile(0.5, sum by (le) (rate(mp3converter_conversion_seconds_bucket",
                   "histogram_quantile(0.99", "mp3converter_queue_messages", 'status=~\\"5..\\"'):
        assert wanted in text, wanted
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# --- Kubernetes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s_root(tmp_path_factory, make_env) -> Path:
    return stack_copy(tmp_path_factory.mktemp("observe") / "repo", make_env())


@pytest.fixture(scope="module")
def with_component(k8s_root) -> list[dict]:
    """The root kustomization with manifests/components/observe listed, as its comment says to do."""
    text = (k8s_root / "kustomization.yaml").read_text()
    line = "#   - manifests/components/observe\n"
    assert "# components:\n" in text and line in text
    enabled = text.replace("# components:\n", "components:\n").replace(line, "  - manifests/components/observe\n")
    (k8s_root / "kustomization.yaml").write_text(enabled)
    try:
        return build(k8s_root)
    finally:
        (k8s_root / "kustomization.yaml").write_text(text)


def test_the_component_sends_every_services_spans_to_jaeger(with_component, k8s_root):
    without = named(build(k8s_root), "Deployment")
    for name in APP_SERVICES:
        env = {v["name"]: v for v in container(named(with_component, "Deployment")[name])["env"]}
        assert env["OTEL_TRACES_EXPORTER"] == {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"}, name
        before = {v["name"]: v for v in container(without[name])["env"]}
        assert "secretKeyRef" in before["OTEL_TRACES_EXPORTER"]["valueFrom"], "without it, .env decides"
    config = named(with_component, "ConfigMap")
    [cluster_env] = [c for n, c in config.items() if n.startswith("cluster-env-")]
    assert cluster_env["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert [p["port"] for p in named(with_component, "Service")["jaeger"]["spec"]["ports"]] == [16686, 4318]


def test_the_tools_run_like_everything_else(with_component):
    """Probes, resources, non-root, no privilege escalation, no capabilities, the runtime's seccomp profile:
    the namespace enforces `restricted`. Only Prometheus gets a token, to list the pods it scrapes."""
    deployments = named(with_component, "Deployment")
    for name in OBSERVE:
        pod, item = pod_spec(deployments[name]), container(deployments[name])
        assert "readinessProbe" in item and "livenessProbe" in item, name
        assert item["resources"]["requests"] and item["resources"]["limits"], name
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert item["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}, name
        assert pod["automountServiceAccountToken"] is (name == "prometheus"), name
    [role] = named(with_component, "Role").values()
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert "ClusterRole" not in {obj["kind"] for obj in with_component}
    [binding] = named(with_component, "RoleBinding").values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "mp3converter"}]
    assert pod_spec(deployments["prometheus"])["serviceAccountName"] == "prometheus"


def test_prometheus_in_the_cluster_scrapes_the_ports_that_serve_metrics(with_component):
    deployments = named(with_component, "Deployment")
    [config_map] = [c for n, c in named(with_component, "ConfigMap").items() if n.startswith("prometheus-config-")]
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    keep = {tuple(rule["source_labels"]): rule["regex"] for rule in config["scrape_configs"][0]["relabel_configs"]
            if rule.get("action") == "keep"}
    ports = re.compile(keep[("__meta_kubernetes_pod_container_port_name",)])
    component = re.compile(keep[("__meta_kubernetes_pod_label_app_kubernetes_io_component",)])
    for name, port in METRICS_PORTS.items():
        deployment = deployments[name]
        assert component.fullmatch(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])
        scraped = [p["containerPort"] for p in container(deployment)["ports"] if ports.fullmatch(p["name"])]
        assert scraped == [port], name
    for name in ("mysql", "mongodb", "rabbitmq", *OBSERVE):
        labels = {**named(with_component, "StatefulSet"), **deployments}[name]["spec"]["template"]["metadata"]["labels"]
        assert not component.fullmatch(labels["app.kubernetes.io/component"]), name


def test_gunicorns_metrics_folder_is_writable_in_the_pods(with_component):
    for name in ("auth", "gateway"):
        deployment = named(with_component, "Deployment")[name]
        assert container(deployment)["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        env = {variable["name"]: variable.get("value") for variable in container(deployment)["env"]}
        [mount] = [path for path in mounts if env["PROMETHEUS_MULTIPROC_DIR"].startswith(path.rstrip("/") + "/")]
        assert "emptyDir" in volumes[mounts[mount]], name


def test_the_network_policies_let_through_what_the_tools_need_and_nothing_more(with_component):
    policies = Policies(with_component)
    pods = pods_of(with_component)
    prometheus, jaeger, grafana = pods["prometheus"], pods["jaeger"], pods["grafana"]
    for name, port in METRICS_PORTS.items():
        assert policies.allowed(prometheus, pods[name], port), f"prometheus cannot scrape {name}"
        assert policies.allowed(pods[name], jaeger, 4318), f"{name} cannot send its spans"
        assert not policies.allowed(pods[name], jaeger, 16686), f"{name} reaches Jaeger's UI"
    assert policies.allowed(prometheus, "10.96.0.1", 443), "prometheus cannot list the pods"
    assert policies.allowed(grafana, prometheus, 9090) and policies.allowed(grafana, jaeger, 16686)
    for backend in ("mysql", "mongodb", "rabbitmq"):
        for tool in (prometheus, jaeger, grafana):
            for port in pods[backend].ports.values():
                assert not policies.allowed(tool, pods[backend], port), f"{tool.name} reaches {backend}"
    assert not policies.allowed(prometheus, pods["rabbitmq"], 5672)
    assert not policies.allowed(pods["converter"], INTERNET, 443), "the converter stays off the internet"
    assert not policies.allowed(grafana, INTERNET, 443) and not policies.allowed(jaeger, INTERNET, 443)


def test_metrics_are_not_routed_by_the_ingress(with_component):
    ingresses = named(with_component, "Ingress")
    [blocked] = [i for i in ingresses.values() if any(p["path"] == "/metrics" for r in i["spec"]["rules"]
                                                       for p in r["http"]["paths"])]
    [rule] = blocked["spec"]["rules"]
    assert rule["host"] == ingresses["gateway"]["spec"]["rules"][0]["host"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/metrics", "Exact")]
    assert blocked["metadata"]["annotations"]["nginx.ingress.kubernetes.io/denylist-source-range"] == "0.0.0.0/0,::/0"
    for ingress in ingresses.values():  # and no UI of the tools is routed at all
        for rule in ingress["spec"]["rules"]:
            assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {"gateway"}


# --- Tilt -----------------------------------------------------------------------------------------------


def test_tilt_observe_deploys_the_tools_and_sends_the_traces_to_jaeger(k8s_root):
    plain = evaluate_tiltfile(k8s_root)
    assert plain.kustomized == ["."] and not set(OBSERVE) & set(plain.workloads())
    run = evaluate_tiltfile(k8s_root, args={"observe": True})
    assert run.kustomized == [".", "manifests/overlays/observe"]
    forwards = {name: {(f.local_port, f.container_port) for f in run.resource(name).port_forwards} for name in OBSERVE}
    assert forwards == {"jaeger": {(16686, 16686)}, "prometheus": {(9090, 9090)}, "grafana": {(3000, 3000)}}
    for name in OBSERVE:
        assert run.resource(name).labels == ["observe"]
    assert run.uncategorized() == []
    workloads = run.workloads()
    for name in APP_SERVICES:
        env = {v["name"]: v for v in container(workloads[name])["env"]}
        assert env["OTEL_TRACES_EXPORTER"] == {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"}, name
    # The same objects as the component gives `kubectl apply -k`.
    ids = {(obj["kind"], obj["metadata"]["name"]) for obj in run.objects}
    both = evaluate_tiltfile(k8s_root, args={"observe": True, "keda": True})
    assert both.uncategorized() == [] and ids <= {(o["kind"], o["metadata"]["name"]) for o in both.objects}
