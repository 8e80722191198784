"""The translation planned for the real kustomize output: every workload played, each answering to its
own Service's name, nothing left out that podman could model."""

import json

from tests.pods.translate import NOT_MODELLED, plan


def test_the_real_build_is_planned_whole(manifests):
    objects = manifests
    result = plan(objects, "/files")
    assert sorted(play.name for play in result.plays) == sorted(
        obj["metadata"]["name"] for obj in objects if obj["kind"] in ("Deployment", "StatefulSet"))
    for play in result.plays:
        assert play.aliases == [play.name], "each workload answers to its own Service's name"
        assert [doc["kind"] for doc in play.documents][-1] == "Deployment"
        assert "$(" not in json.dumps(play.workload["spec"]["template"]["spec"]["containers"][0].get("env", []))
        assert set(play.secrets) <= set(result.secrets)
    left = {kind for kind, _ in result.left_out}
    assert left <= set(NOT_MODELLED) and {"NetworkPolicy", "Ingress", "Service"} <= left
