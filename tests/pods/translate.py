"""What `podman kube play` (Debian's podman 4.3) cannot take as `kubectl kustomize .` writes it, each
turned into what it runs the same way, one small function per difference.

- A Secret from kustomize's generator: podman 4.3 stores a Secret document of the YAML as it is, then
  reads it back as JSON and fails ("secret ... is not valid JSON"). It reads a podman secret holding the
  Secret's data as a JSON object of base64 values: ``podman_secret``.
- A StatefulSet: kube play runs Pods, Deployments, PersistentVolumeClaims and ConfigMaps.
  ``statefulset_as_deployment`` gives its one replica as a Deployment and each volumeClaimTemplate as
  the claim Kubernetes makes for pod 0 (``<template>-<statefulset>-0``), a podman volume.
- A containerPort without hostPort: kube play publishes it on the host (this machine's own RabbitMQ and
  MariaDB hold 5672 and 3306). In a cluster nothing is published: ``without_published_ports`` drops the
  ports and writes the numbers in for the probes that named them.
- ``$(NAME)`` in an env value: Kubernetes expands it from the variables listed above; podman 4.3 leaves
  it as it is. ``with_dependent_variables_expanded`` expands it as Kubernetes does.
- A ConfigMap key mounted with ``subPath`` (one file among others in a directory): podman 4.3 mounts the
  whole ConfigMap there, as a directory. ``config_map_files`` mounts the key's content as that file
  instead, read-only, from a file written for it on the host.
- An emptyDir: podman 4.3 makes it a volume and copies the image's files at the mount point into it
  (Kubernetes starts it empty, which is what hides an image's /tmp/.restart-proc). ``empty_dirs_empty``
  mounts a fresh empty directory of the host instead (one per workload: its replicas share it).
- A Service: pods are named ``<workload>-pod-<n>``, and podman knows no Services. Each workload is
  played on its own, with a network alias for each Service whose selector picks its pods:
  ``service_aliases``.

What podman cannot model at all (NetworkPolicy, Ingress, PodDisruptionBudget, the Namespace, ...) is
left out and named in ``NOT_MODELLED``; docs/kubernetes.md says how each is covered instead.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# Kinds podman does not run; what stands for each here (docs/kubernetes.md has the rest).
NOT_MODELLED = {
    "Namespace": "one podman network per run stands for it",
    "Service": "a network alias per Service on the pods its selector picks (service_aliases)",
    "NetworkPolicy": "not enforced: the static checks of tests/harness/test_network.py",
    "Ingress": "no controller: the gateway is reached on its pod's address",
    "PodDisruptionBudget": "no evictions without a cluster",
}
# $(NAME) and its escape $$, as Kubernetes reads an env value (third_party/forked/golang/expansion).
REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def podman_secret(secret: dict) -> bytes:
    """The content of the podman secret that podman 4.3's kube play reads for SECRET: a JSON object of
    its keys' base64 values (stringData encoded, as the API server does)."""
    data = dict(secret.get("data") or {})
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = base64.b64encode(value.encode()).decode()
    return json.dumps(data, sort_keys=True).encode()


def statefulset_as_deployment(statefulset: dict) -> list[dict]:
    """A StatefulSet's pod 0 as a one-replica Deployment, with the PersistentVolumeClaim of each
    volumeClaimTemplate under the name Kubernetes gives pod 0's claim."""
    if statefulset.get("spec", {}).get("replicas", 1) != 1:
        raise ValueError(f"{statefulset['metadata']['name']}: only a one-replica StatefulSet is translated")
    name = statefulset["metadata"]["name"]
    spec = copy.deepcopy(statefulset["spec"])
    templates = spec.pop("volumeClaimTemplates", [])
    for key in ("serviceName", "podManagementPolicy", "updateStrategy", "persistentVolumeClaimRetentionPolicy"):
        spec.pop(key, None)
    pod = spec["template"]["spec"]
    claims = []
    for template in templates:
        claim = f"{template['metadata']['name']}-{name}-0"
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": claim}, "spec": copy.deepcopy(template["spec"])})
        pod.setdefault("volumes", []).append(
            {"name": template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}}
        )
    spec["replicas"] = 1
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": copy.deepcopy(statefulset["metadata"]), "spec": spec}
    return [*claims, deployment]


def without_published_ports(workload: dict) -> dict:
    """WORKLOAD without its containers' ports (kube play would publish them on the host); a probe that
    named a port gets its number."""
    workload = copy.deepcopy(workload)
    for container in pod_spec(workload)["containers"]:
        numbers = {port["name"]: port["containerPort"] for port in container.pop("ports", []) if "name" in port}
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            action = next((container.get(probe_name, {}).get(kind) for kind in ("httpGet", "tcpSocket")
                           if kind in container.get(probe_name, {})), None)
            if action and isinstance(action.get("port"), str):
                action["port"] = numbers[action["port"]]
    return workload


def config_map_files(workload: dict, configmaps: dict, directory: str) -> tuple[dict, dict[str, str]]:
    """WORKLOAD with each subPath mount of a ConfigMap key turned into a read-only mount of a host file
    in DIRECTORY, and {that file's path: the key's content} to be written there."""
    workload = copy.deepcopy(workload)
    spec = pod_spec(workload)
    volumes = spec.get("volumes", [])
    sources = {volume["name"]: volume["configMap"]["name"] for volume in volumes if "configMap" in volume}
    files: dict[str, str] = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] in sources and "subPath" in mount:
                configmap = sources[mount["name"]]
                path = f"{directory}/{configmap}/{mount.pop('subPath')}"
                files[path] = configmaps[configmap]["data"][path.rsplit("/", 1)[-1]]
                volume = f"{mount['name']}-{len(files)}"
                spec["volumes"].append({"name": volume, "hostPath": {"path": path, "type": "File"}})
                mount.update(name=volume, readOnly=True)
    return workload, files


def empty_dirs_empty(workload: dict, directory: str) -> tuple[dict, list[str]]:
    """WORKLOAD with each emptyDir volume a host directory under DIRECTORY (to be made empty, open to
    every user as Kubernetes makes an emptyDir), and the list of those directories."""
    workload = copy.deepcopy(workload)
    made = []
    for volume in pod_spec(workload).get("volumes", []):
        if "emptyDir" in volume:
            path = f"{directory}/{workload['metadata']['name']}-{volume['name']}"
            del volume["emptyDir"]
            volume["hostPath"] = {"path": path, "type": "Directory"}
            made.append(path)
    return workload, made


def expand(value: str, known: dict) -> str:
    """Kubernetes' expansion of an env value: $(NAME) of a variable in KNOWN is replaced, $$ is a $,
    anything else stays as written."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return known.get(match.group(1), match.group(0))

    return REFERENCE.sub(replace, value)


def with_dependent_variables_expanded(workload: dict, configmaps: dict, secrets: dict) -> dict:
    """WORKLOAD with each env value that refers to $(NAME) expanded, as Kubernetes does, from the
    variables above it (their values read from CONFIGMAPS and SECRETS, {name: object})."""
    workload = copy.deepcopy(workload)
    for container in pod_spec(workload)["containers"]:
        known: dict[str, str] = {}
        for variable in container.get("env", []):
            if "value" in variable:
                variable["value"] = expand(str(variable["value"]), known)
                known[variable["name"]] = variable["value"]
            else:
                value = referenced_value(variable.get("valueFrom", {}), configmaps, secrets)
                if value is not None:
                    known[variable["name"]] = value
    return workload


def referenced_value(source: dict, configmaps: dict, secrets: dict) -> str | None:
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return configmaps[ref["name"]].get("data", {}).get(ref["key"])
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        encoded = secrets[ref["name"]].get("data", {}).get(ref["key"])
        return None if encoded is None else base64.b64decode(encoded).decode()
    return None


def service_aliases(workload: dict, services: list[dict]) -> list[str]:
    """The Services whose selector picks WORKLOAD's pods: the names its pods answer to."""
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return sorted(
        service["metadata"]["name"] for service in services
        if service["spec"].get("selector") and service["spec"]["selector"].items() <= labels.items()
    )


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def references(workload: dict, kind: str) -> set[str]:
    """The ConfigMaps (KIND "configMap") or Secrets (KIND "secret") WORKLOAD's pods read."""
    spec = pod_spec(workload)
    names = set()
    for volume in spec.get("volumes", []):
        if kind in volume:
            names.add(volume[kind].get("name") or volume[kind].get("secretName"))
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get(f"{kind}KeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom", []):
            if f"{kind}Ref" in source:
                names.add(source[f"{kind}Ref"]["name"])
    return names


@dataclass
class Play:
    """One `podman kube play`: a workload with the ConfigMaps and claims it needs, on the network with
    its Services' names."""

    name: str
    documents: list[dict]
    aliases: list[str]
    secrets: list[str]

    @property
    def workload(self) -> dict:
        return next(doc for doc in self.documents if doc["kind"] == "Deployment")


@dataclass
class Plan:
    plays: list[Play]
    secrets: dict[str, bytes] = field(default_factory=dict)  # podman secret name -> content
    files: dict[str, str] = field(default_factory=dict)  # host path -> content (config_map_files)
    empty_dirs: list[str] = field(default_factory=list)  # host directories (empty_dirs_empty)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) podman cannot model


def plan(objects: list[dict], directory: str) -> Plan:
    """OBJECTS (a kustomize build) as podman plays them: one play per workload, the Secrets as podman
    secrets, the files config_map_files mounts (under DIRECTORY), and what is left out."""
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    configmaps = {obj["metadata"]["name"]: obj for obj in by_kind.get("ConfigMap", [])}
    secrets = {obj["metadata"]["name"]: obj for obj in by_kind.get("Secret", [])}
    services = by_kind.get("Service", [])
    known = {"ConfigMap", "Secret", *WORKLOAD_KINDS}
    unknown = set(by_kind) - known - set(NOT_MODELLED)
    if unknown:
        raise ValueError(f"no translation for {sorted(unknown)}: add one, or say in NOT_MODELLED how it is covered")
    result = Plan(plays=[], secrets={name: podman_secret(obj) for name, obj in secrets.items()})
    for kind in NOT_MODELLED:
        result.left_out += [(kind, obj["metadata"]["name"]) for obj in by_kind.get(kind, [])]
    for obj in [obj for kind in WORKLOAD_KINDS for obj in by_kind.get(kind, [])]:
        documents = statefulset_as_deployment(obj) if obj["kind"] == "StatefulSet" else [copy.deepcopy(obj)]
        workload = documents[-1]
        workload = with_dependent_variables_expanded(workload, configmaps, secrets)
        workload = without_published_ports(workload)
        workload, files = config_map_files(workload, configmaps, directory)
        result.files.update(files)
        workload, empty_dirs = empty_dirs_empty(workload, directory)
        result.empty_dirs += empty_dirs
        documents[-1] = workload
        used = [configmaps[name] for name in sorted(references(workload, "configMap"))]
        result.plays.append(Play(
            name=obj["metadata"]["name"],
            documents=[*copy.deepcopy(used), *documents],
            aliases=service_aliases(workload, services),
            secrets=sorted(references(workload, "secret")),
        ))
    return result
