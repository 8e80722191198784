"""The Tiltfile, evaluated by a Starlark interpreter with recorded stand-ins for Tilt's builtins
(tilt_stubs.py): what it builds, syncs, deploys and forwards, and that it refuses what it should.

A name Tilt does not have, or a keyword a builtin does not take, fails the evaluation: so does a typo.
kustomize() is the real `kubectl kustomize`, run on a temporary copy with a .env from scripts/init-env.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import recipe
from tests.harness.k8s_stack import APP_SERVICES, REPO_ROOT, build, container, named, stack_copy
from tests.harness.tilt_stubs import RestartContainer, Run, Sync, TiltfileError, evaluate_tiltfile

CONSUMERS = ("converter", "notification")
BACKENDS = ("mysql", "mongodb", "rabbitmq")
# The order compose.yaml's depends_on gives; test_parity.py checks the two agree.
RESOURCE_DEPS = {
    "auth": {"mysql"},
    "gateway": {"auth", "mongodb", "rabbitmq"},
    "converter": {"mongodb", "rabbitmq"},
    "notification": {"mongodb", "rabbitmq"},
}


@pytest.fixture(scope="session")
def tilt_root(tmp_path_factory, make_env) -> Path:
    return stack_copy(tmp_path_factory.mktemp("tilt") / "repo", make_env())


@pytest.fixture(scope="session")
def tilt(tilt_root):
    return evaluate_tiltfile(tilt_root)


def image(name: str) -> str:
    """The image of a service, as compose, the manifests and the Tiltfile name it."""
    return f"mp3converter/{name}"


def copy_destination(name: str, source: str) -> str:
    """Where services/Dockerfile, built for NAME, COPYs SOURCE (a path in the build context services/)."""
    match = re.search(rf"^COPY\s+(?:--\S+\s+)*{re.escape(source)}\s+(\S+)\s*$", recipe.for_service(name), re.MULTILINE)
    assert match, f"services/Dockerfile does not COPY {source} for {name}"
    return match.group(1)


# --- images and live update ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_is_built_from_the_one_recipe_with_context_services(tilt, name):
    build_ = tilt.source_build(image(name))
    assert build_.context == "services"
    assert build_.dockerfile == "services/Dockerfile"
    assert build_.kwargs["build_args"] == recipe.build_args(name)
    # Only what the image is made of triggers a build: the shared package and the service's own folder.
    assert sorted(build_.only) == sorted(["common", name])
    # The dev stage: its code belongs to the pods' user, who writes what live update syncs.
    assert build_.kwargs["target"] == "dev"
    assert re.search(r"^FROM \S+ AS dev$", recipe.for_service(name), re.MULTILINE)


def test_only_under_tilt_the_app_containers_can_write_their_code(tilt, tilt_root):
    """The manifests keep the app containers' root filesystem read-only; live update needs it writable,
    so Tilt deploys the same objects with that one difference, and nothing else changed."""
    deployed = {name: container(obj) for name, obj in named(tilt.objects, "Deployment").items()}
    applied = {name: container(obj) for name, obj in named(build(tilt_root), "Deployment").items()}
    for name in APP_SERVICES:
        assert applied[name]["securityContext"]["readOnlyRootFilesystem"] is True
        assert deployed[name]["securityContext"]["readOnlyRootFilesystem"] is False
        deployed[name]["securityContext"]["readOnlyRootFilesystem"] = True
        assert deployed[name] == applied[name], name
    others = [obj for obj in tilt.objects if obj["kind"] != "Deployment"]
    assert others == [obj for obj in build(tilt_root) if obj["kind"] != "Deployment"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_live_update_syncs_the_code_where_the_image_has_it(tilt, name):
    steps = tilt.build(image(name)).live_update
    syncs = {step.local_path: step.remote_path for step in steps if isinstance(step, Sync)}
    for package in (f"services/{name}/{name}", "services/common/common"):
        assert (REPO_ROOT / package).is_dir()
        source = package.removeprefix("services/")
        wanted = copy_destination(name, source)
        assert syncs.get(package) == wanted, f"{name}: {package} is not synced to {wanted}, where the image has it"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_live_update_reruns_pip_when_a_requirements_file_changes(tilt, name):
    steps = tilt.build(image(name)).live_update
    requirements = ["services/common/requirements.txt", f"services/{name}/requirements.txt"]
    syncs = {step.local_path: step.remote_path for step in steps if isinstance(step, Sync)}
    pips = [step for step in steps if isinstance(step, Run) and "pip install" in step.cmd]
    assert len(pips) == 1, f"{name}: one pip step expected"
    [pip] = pips
    assert sorted(pip.trigger) == sorted(requirements), "pip runs when, and only when, a requirements file changes"
    for path in requirements:
        assert (REPO_ROOT / path).is_file()
        assert path in syncs, f"{path} must be synced for pip to see the change"
    assert f"-r {syncs[requirements[1]]}" in pip.cmd
    # The synced file's `-r ../common/requirements.txt` must find its neighbour, as in the image.
    assert Path(syncs[requirements[1]]).parent.parent / "common/requirements.txt" == Path(syncs[requirements[0]])
    # A file that did not change comes from the copy the image was built with.
    assert copy_destination(name, "common/requirements.txt") == "/opt/requirements/common/requirements.txt"
    assert copy_destination(name, f"{name}/requirements.txt") == f"/opt/requirements/{name}/requirements.txt"


RESOLVE_REQUIREMENTS = """
import sys
from pathlib import Path

def read(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("-r "):
            yield from read(Path(path).parent / line[3:].strip())
        elif line.strip() and not line.startswith("#"):
            yield line.strip()

print("\\n".join(read(sys.argv[-1])))
"""


@pytest.mark.parametrize("changed", ["service", "common"])
def test_the_pip_step_works_when_tilt_synced_only_one_requirements_file(tilt, tmp_path, changed):
    """Run the step's shell script on a copy of the layout's layout, with pip replaced by a reader of
    requirements files: it must see the synced change and the include of the file that did not change."""
    name = "gateway"
    steps = tilt.build(image(name)).live_update
    [pip] = [step for step in steps if isinstance(step, Run) and "pip install" in step.cmd]
    layout, synced = tmp_path / "opt", tmp_path / "synced"
    for folder in ("common", name):
        (layout / folder).mkdir(parents=True)
        (layout / folder / "requirements.txt").write_text(
            (REPO_ROOT / f"services/{folder}/requirements.txt").read_text()
        )
    folder = name if changed == "service" else "common"
    (synced / folder).mkdir(parents=True)
    (synced / folder / "requirements.txt").write_text(
        (REPO_ROOT / f"services/{folder}/requirements.txt").read_text() + "added-by-this-test==1.0\n"
    )
    script = pip.cmd.replace("/opt/requirements", str(layout)).replace("/tmp/requirements", str(synced))
    reader = tmp_path / "reader.py"
    reader.write_text(RESOLVE_REQUIREMENTS)
    pip_call = r"PYTHONUSERBASE=\S+ pip install [^;]*?-r "
    script, count = re.subn(pip_call, f"{shlex.quote(sys.executable)} {reader} ", script)
    assert count == 1
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    wanted = set(result.stdout.split())
    assert "added-by-this-test==1.0" in wanted
    for folder in ("common", name):
        pins = [line for line in (REPO_ROOT / f"services/{folder}/requirements.txt").read_text().splitlines()
                if line and not line.startswith(("#", "-r"))]
        assert set(pins) <= wanted, f"{folder}'s requirements are missing from what pip would install"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_process_restarts_after_a_live_update(tilt, name):
    """restart_process (its own Tiltfile, evaluated) wraps the image's command in its restart wrapper and
    writes the watched file last in each live update; what it runs is the image's own ENTRYPOINT, with
    only the user site of the pip step added. tests/pods runs it."""
    build_ = tilt.build(image(name))
    assert not any(isinstance(step, RestartContainer) for step in build_.live_update)
    wrapper, watch, *command = build_.entrypoint
    assert wrapper == "/tilt-restart-wrapper" and watch.startswith("--watch_file=")
    restart_file = watch.removeprefix("--watch_file=")
    assert build_.live_update[-1] == Run(f"date > {restart_file}", [])
    # The restarted command is the image's own, with only the user site of the pip step added.
    own = recipe.command(name)
    assert command[-len(own):] == own
    user_base = [arg for arg in command if arg.startswith("PYTHONUSERBASE=")]
    [pip] = [step for step in build_.live_update if isinstance(step, Run) and "pip install" in step.cmd]
    assert user_base and user_base[0] in pip.cmd and "--user" in pip.cmd


@pytest.mark.parametrize("name", APP_SERVICES)
def test_no_volume_hides_the_restart_file(tilt, name):
    """The wrapper's entr watches a file its image made; a volume mounted over it (the emptyDir at /tmp)
    leaves entr nothing to watch, and the container exits at once ("No regular files to watch")."""
    watch = tilt.build(image(name)).entrypoint[1]
    restart_file = Path(watch.removeprefix("--watch_file="))
    workload = named(tilt.objects, "Deployment")[name]
    for mount in container(workload).get("volumeMounts", []):
        assert not restart_file.is_relative_to(mount["mountPath"]), f"{name}: {mount} hides {restart_file}"


# --- what is deployed ----------------------------------------------------------------------------------


def test_the_root_kustomization_is_deployed(tilt, tilt_root):
    assert tilt.kustomized == ["."]
    ids = sorted((obj["kind"], obj["metadata"]["name"]) for obj in tilt.objects)
    assert ids == sorted((obj["kind"], obj["metadata"]["name"]) for obj in build(tilt_root))
    assert "restart_process" in " ".join(tilt.extensions)


def test_every_built_image_is_deployed_and_every_app_image_is_built(tilt):
    images = {container(obj)["image"] for obj in named(tilt.objects, "Deployment").values()}
    deployed = {build_.ref for build_ in tilt.deployed_builds()}
    assert images == deployed == {image(name) for name in APP_SERVICES}


def test_port_forwards_for_the_gateway_and_rabbitmq_ui(tilt):
    forwards = {
        name: {(forward.local_port, forward.container_port) for forward in tilt.resource(name).port_forwards}
        for name in ("gateway", "rabbitmq")
    }
    assert forwards == {"gateway": {(8080, 8080)}, "rabbitmq": {(15672, 15672)}}
    workloads = tilt.workloads()
    for name, ((_, port),) in forwards.items():
        assert port in {p["containerPort"] for p in container(workloads[name]).get("ports", [])}, name


DEBUG_PORTS = {"gateway": 5678, "auth": 5679, "converter": 5680, "notification": 5681}


def test_debug_option_makes_each_service_listen_for_a_debugger_on_its_forwarded_port(tilt, tilt_root):
    """`tilt up -- --debug`: DEBUG and the service's own port (compose.override.yaml's), forwarded to
    localhost; without it, neither."""
    debugged = evaluate_tiltfile(tilt_root, args={"debug": True})
    deployed = named(debugged.objects, "Deployment")
    for name, port in DEBUG_PORTS.items():
        env = {v["name"]: v.get("value") for v in container(deployed[name])["env"]}
        assert env["DEBUG"] == "true" and env["DEBUG_PORT"] == str(port), name
        forwards = {(f.local_port, f.container_port) for f in debugged.resource(name).port_forwards}
        assert (port, port) in forwards, name
        plain_env = {v["name"] for v in container(named(tilt.objects, "Deployment")[name])["env"]}
        assert "DEBUG" not in plain_env, name
        assert all(f.local_port != port for f in tilt.resource(name).port_forwards), name


def test_resources_wait_for_their_backends_and_are_labelled(tilt):
    for name, deps in RESOURCE_DEPS.items():
        assert set(tilt.resource(name).resource_deps) == deps, name
        assert tilt.resource(name).labels == ["app"]
    for name in BACKENDS:
        assert tilt.resource(name).resource_deps == ["cluster-config"]
        assert tilt.resource(name).labels == ["infra"]
    config = tilt.resource("cluster-config")
    assert config.labels == ["infra"]
    kinds = {selector.split(":")[1] for selector in config.objects}
    assert kinds == {"namespace", "secret", "configmap", "networkpolicy"}


def test_no_object_is_left_outside_a_resource(tilt):
    assert tilt.uncategorized() == []


def test_keda_option_deploys_the_autoscale_overlay_with_the_converter(tilt_root):
    run = evaluate_tiltfile(tilt_root, args={"keda": True})
    assert run.kustomized == [".", "manifests/overlays/keda-autoscale"]
    kinds = {obj["kind"] for obj in run.objects}
    assert {"ScaledObject", "TriggerAuthentication"} <= kinds
    assert len(run.resource("converter").objects) == 3  # and the policy that lets KEDA reach RabbitMQ
    assert run.uncategorized() == []


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "context",
    ["gke_acme_europe-west1_prod", "arn:aws:eks:eu-west-1:1:cluster/prod", "admin@prod"],
)
def test_refuses_a_context_that_is_not_local_and_says_why(tilt_root, context):
    with pytest.raises(TiltfileError) as failure:
        evaluate_tiltfile(tilt_root, context=context)
    message = str(failure.value)
    assert f'Refusing to deploy to the Kubernetes context "{context}"' in message
    assert "only runs against a local cluster" in message and "minikube start" in message
    assert f"--allow-context {context}" in message


def test_another_local_cluster_can_be_named(tilt_root):
    run = evaluate_tiltfile(tilt_root, context="kind-dev", args={"allow-context": ["kind-dev"]})
    assert "kind-dev" in run.allowed_contexts and "minikube" in run.allowed_contexts


def test_without_env_it_fails_and_says_to_run_init_env(tmp_path):
    root = stack_copy(tmp_path / "repo", env_file=None)
    with pytest.raises(TiltfileError, match=r"\.env is missing: run scripts/init-env"):
        evaluate_tiltfile(root)


def test_env_is_watched_so_that_init_env_reloads_the_tiltfile(tilt):
    assert ".env" in tilt.watched


@pytest.mark.parametrize(
    ("original", "typo"),
    [
        ("docker_build_with_restart(\n", "docker_build_with_restrat(\n"),
        ("k8s_yaml(encode_yaml_stream(", "k8s_yml(encode_yaml_stream("),
        ("stack = decode_yaml_stream(kustomize('.'))", "stack = decode_yaml_stream(kustomise('.'))"),
        ("port_forwards=[port_forward(8080", "port_forward=[port_forward(8080"),
        ("os.path.exists('.env')", "os.path.exist('.env')"),
        ("config.define_bool('keda'", "config.define_boolean('keda'"),
        ("sync('services/common/common', '/app/common')", "sync('service/common/common', '/app/common')"),
        ("k8s_resource('mysql', ", "k8s_resource('mysq1', "),
    ],
)
def test_a_typo_in_the_tiltfile_fails_the_evaluation(tilt_root, tmp_path, original, typo):
    source = (REPO_ROOT / "Tiltfile").read_text()
    assert original in source, f"the Tiltfile no longer contains {original!r}: update this test"
    mutated = tmp_path / "Tiltfile"
    mutated.write_text(source.replace(original, typo, 1))
    with pytest.raises(TiltfileError):
        evaluate_tiltfile(tilt_root, tiltfile=mutated)


@pytest.mark.parametrize(
    ("snippet", "complaint"),
    [
        ("docker_build('auth', 'services', dockerfile='services/Dockerfile', "
         "live_update=[run('true'), sync('services/auth/auth', '/app/auth')])", "in that order"),
        ("docker_build('auth', 'services', dockerfile='services/Dockerfile', only=['auth'], "
         "live_update=[sync('services/common/common', '/app/common')])", "not a child"),
        ("docker_build('auth', 'services', dockerfile='services/Dockerfile', "
         "live_update=[sync('services/auth/auth', 'app/auth')])", "not absolute"),
        ("docker_build('auth', 'services', dockerfile='services/Dockerfile.nope')", "no Dockerfile"),
        ("k8s_yaml(kustomize('.'))\nk8s_resource('authx')", "no workload named"),
        ("k8s_yaml(kustomize('.'))\nk8s_resource('auth', objects=['gateway'])", "matches 5 objects"),
        ("k8s_yaml(kustomize('.'))\nk8s_resource('auth', resource_deps=['sql'])", "unknown 'sql'"),
        ("allow_k8s_contexts(['minikube'])\nprint(f'{1}')", "f-strings"),
    ],
)
def test_the_stand_ins_reject_what_tilt_rejects(tilt_root, tmp_path, snippet, complaint):
    tiltfile = tmp_path / "Tiltfile"
    tiltfile.write_text(snippet + "\n")
    with pytest.raises(TiltfileError, match=re.escape(complaint)):
        evaluate_tiltfile(tilt_root, tiltfile=tiltfile)
