""".vscode/launch.json: an attach configuration per service whose port is the one the service's debugger
listens on in compose (compose.override.yaml) and under Tilt (`--debug`'s port-forwards), and whose path
mappings put each folder of this checkout where the images have it; one for run-local's single process,
which is also how the devcontainer runs the services (the checkout is its workspace, so the same file
serves there)."""

import json
from pathlib import Path

import pytest

from common.settings import DebuggerSettings
from tests.harness import recipe
from tests.harness.k8s_stack import APP_SERVICES, REPO_ROOT
from tests.harness.test_compose import copy_command
from tests.harness.test_tiltfile import DEBUG_PORTS

LAUNCH = REPO_ROOT / ".vscode/launch.json"


@pytest.fixture(scope="module")
def configurations() -> dict[str, dict]:
    return {config["name"]: config for config in json.loads(LAUNCH.read_text())["configurations"]}


@pytest.fixture(scope="module")
def dev_services(compose_config, compose_env_file) -> dict:
    return compose_config(env_file=compose_env_file, files=[REPO_ROOT / "compose.yaml",
                                                            REPO_ROOT / "compose.override.yaml"])["services"]


def local(path: str) -> Path:
    return Path(path.replace("${workspaceFolder}", str(REPO_ROOT)))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_has_an_attach_configuration_for_compose_and_tilt(configurations, dev_services, name):
    config = configurations[f"{name}: attach (compose, Tilt)"]
    assert config["type"] == "debugpy" and config["request"] == "attach"
    port = config["connect"]["port"]
    assert config["connect"]["host"] == "127.0.0.1"
    assert port == int(dev_services[name]["environment"]["DEBUG_PORT"]) == DEBUG_PORTS[name]
    assert any(p["target"] == port and p["host_ip"] == "127.0.0.1" for p in dev_services[name]["ports"])
    copies = dict(copy_command(recipe.for_service(name)))
    mappings = {local(m["localRoot"]): m["remoteRoot"] for m in config["pathMappings"]}
    assert set(mappings) == {REPO_ROOT / "services" / name / name, REPO_ROOT / "services/common/common"}
    for folder, remote in mappings.items():
        assert folder.is_dir(), folder
        assert copies[folder.relative_to(REPO_ROOT / "services").as_posix()] == remote, (folder, copies)


def test_run_local_has_attach_and_launch_configurations_without_mappings(configurations):
    attach = configurations["run-local: attach (also in the devcontainer)"]
    assert attach["connect"] == {"host": "127.0.0.1", "port": DebuggerSettings().debug_port}
    assert "pathMappings" not in attach
    launch = configurations["run-local: launch under the debugger"]
    assert launch["request"] == "launch" and launch["module"] == "runlocal"


def test_the_devcontainer_has_the_debugger_extension_and_this_workspace(repo_root):
    devcontainer = json.loads((repo_root / ".devcontainer/devcontainer.json").read_text())
    assert "ms-python.debugpy" in devcontainer["customizations"]["vscode"]["extensions"]
    compose = (repo_root / ".devcontainer/compose.devcontainer.yaml").read_text()
    assert f".:{devcontainer['workspaceFolder']}" in compose, "the checkout (and its .vscode) is the workspace"


def test_compound_attaches_to_all_four(repo_root):
    [compound] = json.loads(LAUNCH.read_text())["compounds"]
    assert compound["configurations"] == [f"{name}: attach (compose, Tilt)" for name in DEBUG_PORTS]
