"""The translations of tests/pods/translate.py, one by one (no podman needed), and on the real build."""

import base64
import json

import pytest

from tests.pods.translate import (
    config_map_files,
    empty_dirs_empty,
    expand,
    plan,
    podman_secret,
    service_aliases,
    statefulset_as_deployment,
    with_dependent_variables_expanded,
    without_published_ports,
)


def workload(container: dict, kind: str = "Deployment", **spec) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "db"},
        "spec": {"selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db", "tier": "x"}}, "spec": {"containers": [container]}},
                 **spec},
    }  # fmt: skip


def test_a_secret_becomes_a_json_object_of_base64_values():
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"A": base64.b64encode(b"one").decode()},
              "stringData": {"B": "two"}}
    content = json.loads(podman_secret(secret))
    assert {key: base64.b64decode(value).decode() for key, value in content.items()} == {"A": "one", "B": "two"}


def test_a_statefulset_becomes_a_deployment_with_pod_zeros_claims():
    statefulset = workload({"name": "db", "image": "db", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
                           kind="StatefulSet", serviceName="db", replicas=1,
                           volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": ["RWO"]}}])
    claim, deployment = statefulset_as_deployment(statefulset)
    assert claim == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-db-0"},
                     "spec": {"accessModes": ["RWO"]}}
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 1
    assert "serviceName" not in deployment["spec"] and "volumeClaimTemplates" not in deployment["spec"]
    assert deployment["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}
    ]
    assert "volumeClaimTemplates" in statefulset["spec"], "the original is left as it was"


def test_a_statefulset_of_several_replicas_is_refused():
    with pytest.raises(ValueError, match="one-replica"):
        statefulset_as_deployment(workload({"name": "db"}, kind="StatefulSet", replicas=3))


def test_ports_are_dropped_and_probes_get_their_numbers():
    container = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                 "livenessProbe": {"tcpSocket": {"port": 8080}},
                 "startupProbe": {"exec": {"command": ["true"]}}}
    [result] = without_published_ports(workload(container))["spec"]["template"]["spec"]["containers"]
    assert "ports" not in result
    assert result["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert result["livenessProbe"]["tcpSocket"] == {"port": 8080}
    assert result["startupProbe"] == container["startupProbe"]


@pytest.mark.parametrize(
    ("value", "expanded"),
    [("$(A)@$(B)", "x@y"), ("$$(A)", "$(A)"), ("$(UNKNOWN)", "$(UNKNOWN)"), ("$A $(A", "$A $(A"), ("$$", "$")],
)
def test_expansion_as_kubernetes_does_it(value, expanded):
    assert expand(value, {"A": "x", "B": "y"}) == expanded


def test_dependent_variables_are_expanded_from_secrets_configmaps_and_values_above():
    secret = {"data": {"PASSWORD": base64.b64encode(b"p@ss").decode()}}
    configmap = {"data": {"HOST": "mongodb"}}
    env = [
        {"name": "URL_TOO_EARLY", "value": "$(USER)"},
        {"name": "USER", "value": "gateway"},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PASSWORD"}}},
        {"name": "HOST", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "HOST"}}},
        {"name": "URL", "value": "mongodb://$(USER):$(PASSWORD)@$(HOST):27017"},
    ]
    result = with_dependent_variables_expanded(workload({"name": "app", "env": env}), {"c": configmap}, {"s": secret})
    values = {v["name"]: v.get("value") for v in result["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert values["URL"] == "mongodb://gateway:p@ss@mongodb:27017"
    assert values["URL_TOO_EARLY"] == "$(USER)", "only variables listed above are known"
    assert values["PASSWORD"] is None, "a valueFrom stays a reference"


def test_a_config_map_key_mounted_by_sub_path_becomes_a_file_of_its_own():
    container = {"name": "mq", "volumeMounts": [
        {"name": "init", "mountPath": "/etc/mq"},
        {"name": "init", "mountPath": "/etc/mq/conf.d/90.conf", "subPath": "mq.conf", "readOnly": True}]}
    source = workload(container)
    source["spec"]["template"]["spec"]["volumes"] = [{"name": "init", "configMap": {"name": "mq-init"}}]
    result, files = config_map_files(source, {"mq-init": {"data": {"mq.conf": "a = 1\n", "x.sh": ""}}}, "/files")
    assert files == {"/files/mq-init/mq.conf": "a = 1\n"}
    spec = result["spec"]["template"]["spec"]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "init", "mountPath": "/etc/mq"},
        {"name": "init-1", "mountPath": "/etc/mq/conf.d/90.conf", "readOnly": True}]
    assert spec["volumes"][1] == {"name": "init-1", "hostPath": {"path": "/files/mq-init/mq.conf", "type": "File"}}


def test_an_empty_dir_becomes_a_fresh_directory_of_the_host():
    source = workload({"name": "app", "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]})
    source["spec"]["template"]["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}, {"name": "c", "configMap": {}}]
    result, made = empty_dirs_empty(source, "/files")
    assert made == ["/files/db-tmp"]
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "tmp", "hostPath": {"path": "/files/db-tmp", "type": "Directory"}}, {"name": "c", "configMap": {}}]


def test_a_service_names_the_workloads_its_selector_picks():
    services = [
        {"metadata": {"name": "db"}, "spec": {"selector": {"app": "db"}}},
        {"metadata": {"name": "db-x"}, "spec": {"selector": {"app": "db", "tier": "x"}}},
        {"metadata": {"name": "other"}, "spec": {"selector": {"app": "web"}}},
        {"metadata": {"name": "external"}, "spec": {}},
    ]
    assert service_aliases(workload({"name": "db"}), services) == ["db", "db-x"]


def test_a_kind_without_translation_is_refused():
    with pytest.raises(ValueError, match="no translation for"):
        plan([{"kind": "CronJob", "metadata": {"name": "x"}}], "/files")
