"""What the backends run on their first start (init/), and that compose and Kubernetes run the same.

init/mongodb-users.js runs in Node (mongosh is Node: the same JavaScript and process.env) against a
recording stand-in for mongosh's `db`. init/rabbitmq-definitions.sh runs for real against RabbitMQ in
tests/integration/test_broker_users.py.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness.k8s_stack import build, container, generated, named, pod_spec, stack_copy

ROOT = Path(__file__).resolve().parents[2]
MONGO_SCRIPT = ROOT / "init/mongodb-users.js"
SERVICES = ("GATEWAY", "CONVERTER", "NOTIFICATION")
RUNNER = """
const vm = require("vm");
const fs = require("fs");
const created = [];
const db = { getSiblingDB: (name) => ({ createUser: (spec) => created.push({ db: name, ...spec }) }) };
const env = JSON.parse(process.argv[3]);
// The shell's own globals share the script's scope (mongosh's, and the stand-in's `database`).
const context = vm.createContext({ db, process: { env } });
vm.runInContext("function database(name) {} function print() {} function quit() {}", context);
try {
  vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
  console.log(JSON.stringify({ created }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message) }));
}
"""


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        reason = "needs Node.js to run the MongoDB init script as mongosh would"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run_mongo_script(node: str, env: dict, tmp_path: Path) -> dict:
    runner = tmp_path / "runner.js"
    runner.write_text(RUNNER)
    result = subprocess.run([node, str(runner), str(MONGO_SCRIPT), json.dumps(env)],
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def users_env() -> dict:
    env = {"MONGODB_DB": "mp3converter"}
    for service in SERVICES:
        env[f"MONGO_{service}_USER"] = service.lower()
        env[f"MONGO_{service}_PASSWORD"] = f"password-of-{service.lower()}"
    return env


def test_each_service_gets_a_user_who_may_read_and_write_its_database_only(node, tmp_path):
    result = run_mongo_script(node, users_env(), tmp_path)
    assert result == {"created": [
        {"db": "mp3converter", "user": service.lower(), "pwd": f"password-of-{service.lower()}",
         "roles": [{"role": "readWrite", "db": "mp3converter"}]}
        for service in SERVICES
    ]}  # fmt: skip


@pytest.mark.parametrize("missing", ["MONGO_CONVERTER_PASSWORD", "MONGO_GATEWAY_USER", "MONGODB_DB"])
def test_a_missing_variable_stops_the_first_start_and_says_what_to_do(node, tmp_path, missing):
    env = users_env()
    env[missing] = ""
    result = run_mongo_script(node, env, tmp_path)
    assert missing in result["error"] and "scripts/init-env" in result["error"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, make_env) -> list[dict]:
    return build(stack_copy(tmp_path_factory.mktemp("init") / "repo", make_env()))


def mounts_of(obj: dict) -> dict:
    """{mountPath: (ConfigMap generator name, subPath or None)} of a workload's init volumes."""
    volumes = {v["name"]: v for v in pod_spec(obj).get("volumes", [])}
    result = {}
    for mount in container(obj)["volumeMounts"]:
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if config_map:
            result[mount["mountPath"]] = (config_map["name"].rsplit("-", 1)[0], mount.get("subPath"))
    return result


def test_kubernetes_runs_the_same_init_files_where_compose_mounts_them(stack, compose_model):
    for name, files in (("mongodb-init", ["init/mongodb-users.js"]),
                        ("rabbitmq-init", ["init/rabbitmq-definitions.sh", "init/rabbitmq.conf"])):
        data = generated(stack, "ConfigMap", name)["data"]
        assert data == {Path(f).name: (ROOT / f).read_text() for f in files}, name
    statefulsets = named(stack, "StatefulSet")
    compose = compose_model["services"]
    for backend, config_map in (("mongodb", "mongodb-init"), ("rabbitmq", "rabbitmq-init")):
        in_compose = {m["target"]: Path(m["source"]).name for m in compose[backend]["volumes"] if m["type"] == "bind"}
        in_k8s = {}
        for path, (name, sub_path) in mounts_of(statefulsets[backend]).items():
            assert name == config_map
            if sub_path:
                in_k8s[path] = sub_path
            else:
                in_k8s.update({f"{path}/{key}": key for key in generated(stack, "ConfigMap", name)["data"]})
        assert {path: file for path, file in in_k8s.items() if path in in_compose} == in_compose, backend
    rabbitmq = container(statefulsets["rabbitmq"])
    assert rabbitmq["command"] == compose["rabbitmq"]["entrypoint"]
    assert rabbitmq["args"] == compose["rabbitmq"]["command"]
