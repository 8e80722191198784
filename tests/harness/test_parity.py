"""Parity: compose.yaml and the Kubernetes stack run the same thing.

One .env (from scripts/init-env, secrets replaced by sentinels) feeds both: compose.yaml resolved by the
real compose binary (conftest's compose_model), and the root kustomization built by the real
`kubectl kustomize` in a temporary copy, with the Tiltfile evaluated on that copy. Then: the same app
services, from the same images, Dockerfiles and build context, on the same ports, with the same
variables holding the same values, starting in the same order, syncing code to the same places; and
both agree with .env.example. Each container gets exactly the variables its own service reads
(common.settings.variable_names): the same names, per service, in both.
"""

import base64
import re
from pathlib import Path

import pytest

from tests.harness import recipe
from tests.harness.k8s_stack import (
    APP_SERVICES,
    BACKING_SERVICES,
    build,
    container,
    named,
    stack_copy,
)
from tests.harness.tilt_stubs import Sync, evaluate_tiltfile

# In Kubernetes the two URLs that carry passwords are assembled from these (listed in .env.example's
# backing-services section): the service's own MongoDB and RabbitMQ user. So the containers of the services
# that read a URL have its parts as well ({S} is the service's name in capitals).
URL_PARTS = {
    "MONGODB_URI": {"MONGO_{S}_USER", "MONGO_{S}_PASSWORD"},
    "RABBITMQ_URL": {"RABBITMQ_{S}_USER", "RABBITMQ_{S}_PASSWORD"},
}
DEV_FILES = ("compose.yaml", "compose.override.yaml")


@pytest.fixture(scope="module")
def k8s_root(tmp_path_factory, compose_env_file) -> Path:
    return stack_copy(tmp_path_factory.mktemp("parity") / "repo", compose_env_file)


@pytest.fixture(scope="module")
def k8s(k8s_root) -> list[dict]:
    return build(k8s_root)


@pytest.fixture(scope="module")
def tilt(k8s_root):
    return evaluate_tiltfile(k8s_root)


@pytest.fixture(scope="module")
def compose_apps(compose_model) -> dict:
    return {name: service for name, service in compose_model["services"].items() if "build" in service}


def resolved_env(objects: list[dict], item: dict) -> dict:
    """A container's environment as the kubelet would set it: keys looked up, $(NAME) expanded."""
    data = {}
    for obj in objects:
        if obj["kind"] == "Secret":
            values = {key: base64.b64decode(value).decode() for key, value in obj.get("data", {}).items()}
        elif obj["kind"] == "ConfigMap":
            values = obj.get("data", {})
        else:
            continue
        data[(obj["kind"], obj["metadata"]["name"])] = values
    env = {}
    for variable in item.get("env", []):
        source = variable.get("valueFrom")
        if source is None:
            env[variable["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda match: env[match.group(1)], variable.get("value", "")
            )
            continue
        [(kind_key, ref)] = source.items()
        kind = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}[kind_key]
        env[variable["name"]] = data[(kind, ref["name"])][ref["key"]]
    return env


def relative(path: str, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def test_the_same_app_services_run_in_both(compose_apps, k8s, tilt):
    assert set(compose_apps) == set(APP_SERVICES)
    assert set(named(k8s, "Deployment")) == set(APP_SERVICES)
    assert {build_.ref for build_ in tilt.deployed_builds()} == {f"mp3converter/{name}" for name in APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_same_image_from_the_same_dockerfile_and_context(name, compose_apps, k8s, tilt, repo_root):
    service = compose_apps[name]
    context = Path(service["build"]["context"])
    dockerfile = context / service["build"]["dockerfile"]
    assert relative(str(context), repo_root) == "services"
    build_ = tilt.source_build(f"mp3converter/{name}")
    assert build_.context == relative(str(context), repo_root)
    assert build_.dockerfile == relative(str(dockerfile), repo_root) == "services/Dockerfile"
    assert build_.kwargs["build_args"] == service["build"]["args"] == recipe.build_args(name)
    build_ = tilt.build(f"mp3converter/{name}")
    assert service["image"] == container(named(k8s, "Deployment")[name])["image"] == build_.ref
    assert build_.ref == f"mp3converter/{name}", "qualified: an unqualified name would overwrite anyone's auth:latest"


def test_the_same_backing_service_images(compose_model, k8s):
    statefulsets = named(k8s, "StatefulSet")
    for name in BACKING_SERVICES:
        assert container(statefulsets[name])["image"] == compose_model["services"][name]["image"], name


def url_parts(name: str, variables) -> set:
    """The variables a service's URLs are assembled from in Kubernetes."""
    return {part.format(S=name.upper()) for url, parts in URL_PARTS.items() if url in variables for part in parts}


def test_the_services_variables_together_are_the_app_variables_of_env_example(
    service_variables, container_variables, compose_apps, k8s, env_example
):
    """Nothing of .env.example is left unread, nothing a service reads is missing from it, and no variable
    reaches a container in one way of running and not in the other. The variables that name a container
    (OTEL_SERVICE_NAME) are set by compose and Kubernetes alike, and are not in .env."""
    assert set(service_variables) == set(APP_SERVICES)
    assert set().union(*service_variables.values()) == set(env_example.app)
    naming = set().union(*container_variables.values())
    assert not naming & set(env_example.defaults)
    in_compose = set().union(*(compose_apps[name]["environment"] for name in APP_SERVICES))
    assert in_compose == set(env_example.app) | naming
    in_k8s = set().union(*(resolved_env(k8s, container(named(k8s, "Deployment")[name])) for name in APP_SERVICES))
    parts = set().union(*(url_parts(name, service_variables[name]) for name in APP_SERVICES))
    assert in_k8s == set(env_example.app) | parts | naming
    assert set(env_example.backing) >= parts


# What stands in front of the gateway differs: nothing in compose, the Ingress controller in Kubernetes.
PROXIES_DIFFER = {"TRUSTED_PROXIES"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_same_variables_with_the_same_values(name, compose_apps, k8s, service_variables, container_variables):
    """Each container gets exactly its service's variables, the same names and values in both."""
    compose_env = compose_apps[name]["environment"]
    k8s_env = resolved_env(k8s, container(named(k8s, "Deployment")[name]))
    own = service_variables[name] | set(container_variables[name])
    assert set(compose_env) == own, f"compose.yaml {name}: missing {sorted(own - set(compose_env))}, " + (
        f"extra {sorted(set(compose_env) - own)}"
    )
    wanted = own | url_parts(name, own)
    assert not wanted - set(k8s_env), f"add {sorted(wanted - set(k8s_env))} to the env of manifests/base/{name}.yaml"
    assert not set(k8s_env) - wanted, f"manifests/base/{name}.yaml: {name} does not read {set(k8s_env) - wanted}"
    different = {
        variable: (compose_env[variable], k8s_env[variable])
        for variable in own - PROXIES_DIFFER
        if compose_env[variable] != k8s_env[variable]
    }
    assert not different, f"{name}: compose and Kubernetes disagree (compose, k8s): {different}"


def test_each_secret_reaches_the_same_containers_in_both(compose_apps, compose_env, k8s, env_example, secret_holders):
    """A secret's value (a sentinel of the shared .env) is in the same app containers in both, and only in
    those of the services that read it: JWT_SECRET in auth alone."""
    k8s_envs = {name: resolved_env(k8s, container(named(k8s, "Deployment")[name])) for name in APP_SERVICES}
    for secret in env_example.secrets:
        value = compose_env[secret]
        assert value.startswith("sentinel_"), secret
        compose_envs = {name: compose_apps[name]["environment"] for name in APP_SERVICES}
        in_compose = {name for name in APP_SERVICES if any(value in v for v in compose_envs[name].values())}
        in_k8s = {name for name in APP_SERVICES if any(value in v for v in k8s_envs[name].values())}
        assert in_compose == in_k8s == secret_holders[secret] & set(APP_SERVICES), (secret, in_compose, in_k8s)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_both_override_the_same_variables_of_env_and_no_others(
    name, compose_apps, k8s, compose_env, env_example, service_variables
):
    """What a container changes from .env is only about where it runs, and it is the same in both."""
    item = container(named(k8s, "Deployment")[name])
    k8s_env = resolved_env(k8s, item)
    own = service_variables[name]
    overridden_in_k8s = {variable for variable in own if k8s_env[variable] != compose_env[variable]}
    overridden_in_compose = {
        variable for variable in own if compose_apps[name]["environment"][variable] != compose_env[variable]
    }
    assert overridden_in_k8s - PROXIES_DIFFER == overridden_in_compose - PROXIES_DIFFER
    assert overridden_in_k8s == own & {"MYSQL_HOST", "AUTH_SVC_ADDRESS", "MONGODB_URI", "RABBITMQ_URL",
                                       "OTEL_EXPORTER_OTLP_ENDPOINT", "TRUSTED_PROXIES"}
    if "TRUSTED_PROXIES" in own:
        trusted = (compose_apps[name]["environment"]["TRUSTED_PROXIES"], k8s_env["TRUSTED_PROXIES"])
        assert trusted == ("", "10.244.0.0/16")
    # Secrets come from the Secret only: never a literal, never a ConfigMap.
    sources = {variable["name"]: variable for variable in item["env"]}
    for secret in env_example.secrets & set(sources):
        assert "secretKeyRef" in sources[secret].get("valueFrom", {}), f"{name}: {secret} is not read from the Secret"


def test_neither_reloads_code_whatever_env_says(make_env, compose_config, tmp_path):
    """DEV_RELOAD in .env is for scripts/run-local: compose (without watch) and Kubernetes fix it to false."""
    env_file = make_env({"DEV_RELOAD": "true"})
    compose = compose_config(env_file=env_file)["services"]
    objects = build(stack_copy(tmp_path / "repo", env_file))
    for name in ("auth", "gateway"):
        k8s_env = resolved_env(objects, container(named(objects, "Deployment")[name]))
        assert compose[name]["environment"]["DEV_RELOAD"] == k8s_env["DEV_RELOAD"] == "false", name


@pytest.mark.parametrize("name", BACKING_SERVICES)
def test_the_backing_services_are_configured_alike(name, compose_model, k8s):
    compose_env = compose_model["services"][name].get("environment", {})
    k8s_env = resolved_env(k8s, container(named(k8s, "StatefulSet")[name]))
    assert k8s_env == compose_env


def test_the_same_ports(compose_apps, compose_model, k8s):
    deployments, statefulsets, services = named(k8s, "Deployment"), named(k8s, "StatefulSet"), named(k8s, "Service")
    for name in APP_SERVICES:
        listening = {int(value) for variable, value in compose_apps[name]["environment"].items()
                     if variable in ("AUTH_PORT", "GATEWAY_PORT")}
        ports = {p["containerPort"] for p in container(deployments[name]).get("ports", [])}
        published = {int(p["target"]) for p in compose_apps[name].get("ports", [])}
        assert published <= ports, f"{name}: compose publishes {published}, the container declares {ports}"
        health = " ".join(compose_apps[name]["healthcheck"]["test"])
        url_port = re.search(r"http://127\.0\.0\.1:(\d+)/", health)
        if url_port:
            assert {int(url_port.group(1))} == ports, f"{name}: compose checks another port"
            assert ports <= listening
        else:
            metrics = int(compose_apps[name]["environment"]["METRICS_PORT"])
            assert ports == {metrics}, f"{name}: a consumer listens only for Prometheus, on METRICS_PORT"
    # The URLs and hosts the apps use name the cluster Services on the ports compose uses (MYSQL_PORT is
    # auth's, the URLs the gateway's).
    env = {**compose_apps["auth"]["environment"], **compose_apps["gateway"]["environment"]}
    expected = {
        "mysql": int(env["MYSQL_PORT"]),
        "mongodb": int(re.search(r"@mongodb:(\d+)/", env["MONGODB_URI"]).group(1)),
        "rabbitmq": int(re.search(r"@rabbitmq:(\d+)/", env["RABBITMQ_URL"]).group(1)),
        "auth": int(re.search(r"//auth:(\d+)$", env["AUTH_SVC_ADDRESS"]).group(1)),
    }
    for name, port in expected.items():
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [port], name
    ui = {int(p["target"]) for p in compose_model["services"]["rabbitmq"].get("ports", [])}
    assert ui == {15672} and ui <= {p["containerPort"] for p in container(statefulsets["rabbitmq"])["ports"]}


def test_the_same_start_up_order(compose_apps, tilt):
    for name, service in compose_apps.items():
        required = {dep for dep, condition in service.get("depends_on", {}).items() if condition.get("required", True)}
        assert set(tilt.resource(name).resource_deps) == required, name


def test_the_same_health_checks(compose_apps, k8s):
    """Compose's health check is what `up --wait` and depends_on wait for: the HTTP services' liveness
    (their /readyz depends on others), the consumers' readiness (connected to the broker)."""
    deployments = named(k8s, "Deployment")
    for name, service in compose_apps.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        if "--url" in test:
            url = test[test.index("--url") + 1]
            liveness = container(deployments[name])["livenessProbe"]
            assert url.endswith(liveness["httpGet"]["path"]), f"{name}: compose checks {url}"
        else:
            assert container(deployments[name])["readinessProbe"]["exec"]["command"] == test[1:], name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_code_is_synced_to_the_same_places(name, compose_config, compose_env_file, tilt, repo_root):
    dev = compose_config(env_file=compose_env_file, files=[repo_root / f for f in DEV_FILES])
    watch = dev["services"][name]["develop"]["watch"]
    # Both sync into the image's dev stage, whose code belongs to the service's user.
    target = tilt.source_build(f"mp3converter/{name}").kwargs["target"]
    assert dev["services"][name]["build"]["target"] == target == "dev"
    compose_syncs = {
        relative(rule["path"], repo_root): rule["target"] for rule in watch if rule["action"].startswith("sync")
    }
    steps = tilt.build(f"mp3converter/{name}").live_update
    tilt_syncs = {step.local_path: step.remote_path for step in steps if isinstance(step, Sync)}
    assert compose_syncs == {path: target for path, target in tilt_syncs.items() if not path.endswith(".txt")}
    # A requirements change: compose rebuilds the image, Tilt reruns pip; both react to the same files.
    compose_rebuilds = {relative(rule["path"], repo_root) for rule in watch if rule["action"] == "rebuild"}
    requirements = {path for path in tilt_syncs if path.endswith("requirements.txt")}
    assert requirements == {path for path in compose_rebuilds if path.endswith("requirements.txt")}


def mebibytes(quantity: str) -> float:
    """A size as compose's tmpfs option (`2g`, `2048m`) or Kubernetes (`2Gi`) writes it, in MiB."""
    number, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", quantity).groups()
    factor = {"": 2**-20, "k": 2**-10, "m": 1, "g": 1024, "Ki": 2**-10, "Mi": 1, "Gi": 1024}[unit]
    return int(number) * factor


def test_the_converters_tmp_is_bounded_alike_and_holds_the_largest_upload_with_its_mp3(compose_apps, k8s):
    """The converter copies a video it cannot pipe (AVI, MPEG, an MP4 with its index last) into /tmp
    and writes the MP3 there. In compose /tmp is memory (a tmpfs, unbounded it may take half the
    host's); in Kubernetes it is disk. Both get the same size: the largest upload and the largest
    MP3 ffmpeg may write, with room, and not much more."""
    from converter.ffmpeg import FILE_SIZE_MARGIN, Limits

    tmpfs = compose_apps["converter"]["tmpfs"]
    assert len(tmpfs) == 1 and tmpfs[0].startswith("/tmp:"), tmpfs
    options = dict(option.split("=", 1) for option in tmpfs[0].removeprefix("/tmp:").split(","))
    deployment = named(k8s, "Deployment")["converter"]
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container(deployment)["volumeMounts"] if m["mountPath"] == "/tmp")
    assert mebibytes(options["size"]) == mebibytes(volumes[mount["name"]]["emptyDir"]["sizeLimit"])

    environment = resolved_env(k8s, container(deployment))
    largest_mp3 = Limits(int(environment["MAX_DURATION_SECONDS"]), 1).output_bytes + FILE_SIZE_MARGIN
    largest_upload = int(compose_apps["gateway"]["environment"]["MAX_UPLOAD_MB"]) * 2**20
    needed = (largest_upload + largest_mp3) / 2**20
    assert needed < mebibytes(options["size"]) < 1.5 * needed
