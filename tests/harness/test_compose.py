"""compose.yaml (and compose.override.yaml, the development override compose merges by itself), checked
by the Docker Compose v2 binary itself and by assertions on the model it resolves.

No engine is needed: `config` only reads the files. See conftest.py for the fixtures.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import recipe

APP_SERVICES = ("auth", "gateway", "converter", "notification")
BACKING_SERVICES = ("mysql", "mongodb", "rabbitmq")
FLASK_SERVICES = {"auth": 5000, "gateway": 8080}
CONSUMERS = ("converter", "notification")
# What a container overrides because of where it runs; everything else is .env's value.
FIXED_IN_CONTAINERS = {
    "MYSQL_HOST": "mysql",
    "MYSQL_PORT": "3306",
    "AUTH_PORT": "5000",
    "GATEWAY_PORT": "8080",
    "AUTH_SVC_ADDRESS": "http://auth:5000",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
    "METRICS_PORT": "9464",
    # No proxy in front of the gateway (the engine's port forwarding writes no X-Forwarded-For): a
    # client's own X-Forwarded-For must never earn it another login allowance.
    "TRUSTED_PROXIES": "",
}
# Each service logs in to MongoDB and RabbitMQ as its own user ({SERVICE} is GATEWAY, CONVERTER...).
BUILT_FROM_CREDENTIALS = {
    "MONGODB_URI": "mongodb://{MONGO_SERVICE_USER}:{MONGO_SERVICE_PASSWORD}@mongodb:27017/?authSource={MONGODB_DB}&authMechanism=SCRAM-SHA-256",
    "RABBITMQ_URL": "amqp://{RABBITMQ_SERVICE_USER}:{RABBITMQ_SERVICE_PASSWORD}@rabbitmq:5672/%2F",
}
USERS_OF = ("GATEWAY", "CONVERTER", "NOTIFICATION")
# What each backend container reads (its image, and the init/ files it runs), and the .env variable it
# comes from.
BACKING_ENVIRONMENT = {
    "mysql": {
        "MYSQL_DATABASE": "MYSQL_DB",
        "MYSQL_USER": "MYSQL_USER",
        "MYSQL_PASSWORD": "MYSQL_PASSWORD",
        "MYSQL_ROOT_PASSWORD": "MYSQL_ROOT_PASSWORD",
    },
    "mongodb": {
        "MONGO_INITDB_ROOT_USERNAME": "MONGO_ROOT_USER",
        "MONGO_INITDB_ROOT_PASSWORD": "MONGO_ROOT_PASSWORD",
        "MONGODB_DB": "MONGODB_DB",
        **{f"MONGO_{s}_{part}": f"MONGO_{s}_{part}" for s in USERS_OF for part in ("USER", "PASSWORD")},
    },
    "rabbitmq": {
        "RABBITMQ_USER": "RABBITMQ_USER",
        "RABBITMQ_PASSWORD": "RABBITMQ_PASSWORD",
        **{f"RABBITMQ_{s}_{part}": f"RABBITMQ_{s}_{part}" for s in USERS_OF for part in ("USER", "PASSWORD")},
        "VIDEO_QUEUE": "VIDEO_QUEUE",
        "MP3_QUEUE": "MP3_QUEUE",
    },
}
DEV_FILES = ("compose.yaml", "compose.override.yaml")
SECRET_LOOKING = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY", re.IGNORECASE)
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")


def seconds(duration: str) -> float:
    """A compose duration such as '30s', '1m0s', '1m30s'."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", duration)
    assert parts, f"not a duration: {duration!r}"
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(value) * unit[name] for value, name in parts)


def copy_command(dockerfile_text: str):
    """(source, destination) of each COPY in a Dockerfile's text (flags dropped)."""
    for line in dockerfile_text.splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            yield args[0], args[-1]


# ---------------------------------------------------------------- the compose binary accepts the file


@pytest.fixture(scope="module")
def dev_model(compose_config, compose_env_file, repo_root) -> dict:
    """compose.yaml with compose.override.yaml, as `docker compose up --watch` runs it."""
    return compose_config(env_file=compose_env_file, files=[repo_root / f for f in DEV_FILES], profiles=["*"])


@pytest.mark.parametrize("profiles", [(), ("mail",), ("observe",), ("mail", "observe")],
                         ids=["default", "mail", "observe", "mail+observe"])
@pytest.mark.parametrize("files", [("compose.yaml",), DEV_FILES], ids=["compose", "dev"])
def test_compose_validates_the_file(run_compose, compose_env_file, profiles, files, repo_root):
    result = run_compose("config", "-q", env_file=compose_env_file, profiles=profiles,
                         files=[repo_root / f for f in files])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"compose warns:\n{result.stderr}"


@pytest.mark.parametrize("path", DEV_FILES)
def test_compose_files_match_the_compose_spec_schema(repo_root, path):
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(repo_root / path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_env_compose_up_says_to_run_init_env(tmp_path, run_compose, repo_root):
    shutil.copy(repo_root / "compose.yaml", tmp_path / "compose.yaml")
    for command in (["up"], ["config", "-q"]):
        result = run_compose(*command, files=[tmp_path / "compose.yaml"], cwd=tmp_path)
        assert result.returncode != 0, f"`docker compose {' '.join(command)}` accepted a missing .env"
        assert "required variable" in result.stderr, result.stderr
        assert "run scripts/init-env" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["MYSQL_PASSWORD", "JWT_SECRET", "MONGO_ROOT_PASSWORD", "RABBITMQ_PASSWORD",
                                  "MONGO_CONVERTER_PASSWORD", "RABBITMQ_GATEWAY_PASSWORD"])
def test_an_empty_secret_is_refused_with_what_to_do(make_env, run_compose, name):
    result = run_compose("config", "-q", env_file=make_env({name: ""}))
    assert result.returncode != 0, f"compose accepted an empty {name}"
    assert name in result.stderr and "scripts/init-env" in result.stderr, result.stderr


# ---------------------------------------------------------------- services, images, builds


OBSERVE_SERVICES = ("jaeger", "prometheus", "grafana")


def test_services(compose_config, compose_env_file, compose_model):
    default = compose_config(env_file=compose_env_file)
    assert set(default["services"]) == set(BACKING_SERVICES) | set(APP_SERVICES)
    assert set(compose_model["services"]) == {*BACKING_SERVICES, *APP_SERVICES, "mailpit", *OBSERVE_SERVICES}
    assert compose_model["services"]["mailpit"]["profiles"] == ["mail"]
    for name in OBSERVE_SERVICES:
        assert compose_model["services"][name]["profiles"] == ["observe"], name


@pytest.mark.parametrize(
    ("service", "repository"),
    [("mysql", "mysql"), ("mongodb", "mongo"), ("rabbitmq", "rabbitmq"), ("mailpit", "axllent/mailpit")],
)
def test_backing_images_are_official_and_pinned(compose_model, service, repository):
    image = compose_model["services"][service]["image"]
    assert image.split(":")[0] == repository
    assert PINNED_IMAGE.match(image), f"{service}: {image} is not pinned to a full version"
    assert "build" not in compose_model["services"][service]


def test_rabbitmq_image_has_the_management_ui(compose_model):
    assert "-management" in compose_model["services"]["rabbitmq"]["image"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_are_built_from_services_dir(compose_model, repo_root, name):
    service = compose_model["services"][name]
    assert Path(service["build"]["context"]) == repo_root / "services"
    # The one recipe of the four, told which service to build.
    assert service["build"]["dockerfile"] == "Dockerfile" and repo_root / "services/Dockerfile" == recipe.RECIPE
    assert service["build"]["args"] == recipe.build_args(name)
    # Qualified: an unqualified `auth` would overwrite anyone's auth:latest.
    assert service["image"] == f"mp3converter/{name}"
    # Never a stale or foreign image of the same name: always built from this checkout.
    assert service["pull_policy"] == "build"
    assert not service.get("volumes"), "the code comes from the image (and watch), not from a bind mount"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_outside_watch_the_code_is_read_only_and_only_tmp_is_writable(compose_model, dev_model, repo_root, name):
    """compose.yaml: the image's runtime stage (code owned by root) on a read-only root filesystem with a
    tmpfs /tmp. compose.override.yaml, for development only: the dev stage (code owned by the service's user),
    writable, so that synced files can land."""
    service = compose_model["services"][name]
    assert service["build"]["target"] == "runtime" and service["read_only"] is True
    assert service["tmpfs"] == ["/tmp:size=2g" if name == "converter" else "/tmp"]  # test_parity.py: why 2g
    assert service["environment"].get("HEARTBEAT_FILE", "/tmp/").startswith("/tmp/")
    assert "develop" not in service, "watch belongs to compose.override.yaml: it needs the dev image"
    dev = dev_model["services"][name]
    assert dev["build"]["target"] == "dev" and not dev.get("read_only", False)
    stages = re.findall(r"^FROM \S+ AS (\w+)$", recipe.for_service(name), re.M)
    assert stages[-1] == "runtime", "the default stage (the last) is the one with root-owned code"
    assert {"dev", "runtime"} <= set(stages)


# ---------------------------------------------------------------- health and start order


def healthcheck_words(service: dict) -> list:
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), "healthcheck disabled"
    test = check.get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL"), f"no healthcheck command: {test!r}"
    for key in ("interval", "timeout", "retries"):
        assert key in check, f"healthcheck without {key}"
    assert seconds(check["timeout"]) < seconds(check["interval"])
    return test


def test_mysql_health_logs_in_over_tcp_and_reads_the_schema(compose_model, repo_root):
    test = healthcheck_words(compose_model["services"]["mysql"])
    command = " ".join(test[1:])
    assert test[0] == "CMD-SHELL"
    # TCP: the image's first-run server (skip-networking) must not count as healthy.
    assert "--protocol=TCP" in command and "127.0.0.1" in command
    # The password reaches mysql in an option file on standard input, as the image's entrypoint passes it:
    # never on a command line, nor in MYSQL_PWD (deprecated). --defaults-extra-file must come first.
    assert 'password="%s"' in command and '"$$MYSQL_PASSWORD" |' in command
    assert re.search(r"\| mysql --defaults-extra-file=/dev/stdin ", command)
    assert "MYSQL_PWD" not in command
    assert not re.search(r"(--password|\s-p)\S", command)
    table = re.search(r"SELECT 1 FROM (\w+)", command)
    assert table, command
    assert f"CREATE TABLE IF NOT EXISTS {table.group(1)} " in (repo_root / "init.sql").read_text()


def test_mongodb_health_pings_over_the_network(compose_model):
    service = compose_model["services"]["mongodb"]
    test = healthcheck_words(service)
    assert test[:2] == ["CMD", "mongosh"]
    assert "ping" in " ".join(test)
    # Through its network name, not 127.0.0.1 (where the first-run server listens).
    assert test[test.index("--host") + 1] == service["hostname"] == "mongodb"


def test_rabbitmq_health_uses_diagnostics(compose_model):
    test = healthcheck_words(compose_model["services"]["rabbitmq"])
    assert test[:3] == ["CMD", "rabbitmq-diagnostics", "-q"]
    assert test[3] in ("ping", "check_running", "check_port_connectivity")


@pytest.mark.parametrize("name", FLASK_SERVICES)
def test_flask_services_health_is_healthz_on_their_port(compose_model, repo_root, name):
    service = compose_model["services"][name]
    port = FLASK_SERVICES[name]
    assert service["environment"][f"{name.upper()}_PORT"] == str(port)
    assert healthcheck_words(service) == [
        "CMD",
        "python",
        "-m",
        "common.healthcheck",
        "--url",
        f"http://127.0.0.1:{port}/healthz",
    ]
    assert (repo_root / "services/common/common/healthcheck.py").is_file()


@pytest.mark.parametrize("name", CONSUMERS)
def test_consumers_are_healthy_while_connected(compose_model, name):
    service = compose_model["services"][name]
    assert healthcheck_words(service) == ["CMD", "python", "-m", "common.healthcheck", "--connected"]
    assert service["environment"]["HEARTBEAT_FILE"].startswith("/tmp/"), "a path writable in the image"


def test_mailpit_health(compose_model):
    assert healthcheck_words(compose_model["services"]["mailpit"])[1:] == ["/mailpit", "readyz"]


def test_app_services_wait_for_healthy_backends(compose_model):
    expected = {
        "auth": {"mysql"},
        "gateway": {"auth", "mongodb", "rabbitmq"},
        "converter": {"mongodb", "rabbitmq"},
        "notification": {"mongodb", "rabbitmq", "mailpit"},
    }
    for name, needs in expected.items():
        depends_on = compose_model["services"][name]["depends_on"]
        assert set(depends_on) == needs, name
        for dependency, rule in depends_on.items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            # mailpit runs only with the `mail` profile; everything else is required.
            assert rule["required"] is (dependency != "mailpit"), f"{name} -> {dependency}"


def test_stop_grace_exceeds_the_services_own(compose_model, env_example):
    grace = int(env_example.defaults["SHUTDOWN_GRACE_SECONDS"])
    for name in APP_SERVICES:
        assert seconds(compose_model["services"][name].get("stop_grace_period", "10s")) > grace, name


# ---------------------------------------------------------------- compose watch


@pytest.mark.parametrize("name", APP_SERVICES)
def test_watch_syncs_code_and_rebuilds_on_requirements(dev_model, repo_root, name):
    service = dev_model["services"][name]
    rules = service["develop"]["watch"]
    code_action = "sync" if name in FLASK_SERVICES else "sync+restart"
    syncs = {Path(r["path"]).relative_to(repo_root).as_posix(): r for r in rules if r["action"] != "rebuild"}
    assert set(syncs) == {f"services/{name}/{name}", "services/common/common"}
    copies = dict(copy_command(recipe.for_service(name)))
    for path, rule in syncs.items():
        assert rule["action"] == code_action, path
        assert (repo_root / path).is_dir(), f"watch path {path} does not exist"
        # The target is where the Dockerfile puts that code.
        source = Path(path).relative_to("services").as_posix()
        assert copies.get(source) == rule["target"], f"{path} -> {rule['target']}, COPY {copies}"
        assert "__pycache__/" in rule.get("ignore", [])
    rebuilds = {Path(r["path"]).relative_to(repo_root).as_posix() for r in rules if r["action"] == "rebuild"}
    assert {f"services/{name}/requirements.txt", "services/common/requirements.txt", "services/Dockerfile"} <= rebuilds
    for path in rebuilds:
        assert (repo_root / path).is_file(), path
    if name in FLASK_SERVICES:
        # A sync alone changes nothing unless gunicorn reloads.
        assert service["environment"]["DEV_RELOAD"] == "true"


def test_plain_docker_compose_is_the_development_stack_and_f_compose_yaml_the_production_one(
    compose_config, compose_env_file, dev_model
):
    """Docker's convention: `docker compose up` (no -f) merges compose.override.yaml by itself, so that
    `docker compose up --watch` and `docker compose watch` sync code exactly as typed; `-f compose.yaml`
    leaves it out."""
    as_typed = compose_config(env_file=compose_env_file, files=[], profiles=["*"])
    assert as_typed == dev_model
    for name in APP_SERVICES:
        assert as_typed["services"][name]["develop"]["watch"], name
    production = compose_config(env_file=compose_env_file, files=None, profiles=["*"])
    assert not any("develop" in service for service in production["services"].values())


DEBUG_PORTS = {"gateway": 5678, "auth": 5679, "converter": 5680, "notification": 5681}


def test_the_debugger_is_opt_in_on_a_fixed_port_per_service_on_the_loopback_only(make_env, compose_config, repo_root):
    files = [repo_root / f for f in DEV_FILES]
    off = compose_config(env_file=make_env(), files=files)["services"]
    on = compose_config(env_file=make_env({"DEBUG": "1"}), files=files)["services"]
    production = compose_config(env_file=make_env({"DEBUG": "1"}))["services"]
    for name, port in DEBUG_PORTS.items():
        assert off[name]["environment"]["DEBUG"] == "false" and on[name]["environment"]["DEBUG"] == "1", name
        assert on[name]["environment"]["DEBUG_PORT"] == str(port), name
        assert ("127.0.0.1", str(port), port) in published(on[name]), name
        assert "DEBUG" not in production[name]["environment"], f"{name}: a debugger in the production stack"
        assert all(target != port for _ip, _host, target in published(production[name])), name
    assert len(set(DEBUG_PORTS.values())) == len(DEBUG_PORTS)


# ---------------------------------------------------------------- ports and volumes


def published(service: dict) -> list:
    return [(p.get("host_ip", ""), p["published"], p["target"]) for p in service.get("ports") or []]


def test_ports(make_env, compose_config):
    model = compose_config(env_file=make_env({"GATEWAY_PORT": "18080"}), profiles=["mail"])["services"]
    # The gateway's host port is GATEWAY_PORT from .env, on the loopback; inside, it always listens on 8080.
    assert published(model["gateway"]) == [("127.0.0.1", "18080", 8080)]
    assert model["gateway"]["environment"]["GATEWAY_PORT"] == "8080"
    # Admin UIs only on the loopback.
    assert published(model["rabbitmq"]) == [("127.0.0.1", "15672", 15672)]
    assert published(model["mailpit"]) == [("127.0.0.1", "8025", 8025)]
    for name in set(model) - {"gateway", "rabbitmq", "mailpit"}:
        assert not model[name].get("ports"), f"{name} should not publish a port"


def test_the_gateway_can_be_opened_to_the_network(make_env, compose_config):
    everywhere = "0.0.0.0"  # noqa: S104 (what a user sets to reach the gateway from other machines)
    model = compose_config(env_file=make_env({"GATEWAY_HOST_IP": everywhere}))["services"]
    assert published(model["gateway"]) == [(everywhere, "8080", 8080)]


def test_ui_ports_can_move_when_taken(make_env, compose_config):
    env_file = make_env({"RABBITMQ_UI_PORT": "25672", "MAILPIT_UI_PORT": "18025"})
    model = compose_config(env_file=env_file, profiles=["mail"])["services"]
    assert published(model["rabbitmq"]) == [("127.0.0.1", "25672", 15672)]
    assert published(model["mailpit"]) == [("127.0.0.1", "18025", 8025)]


def test_data_lives_in_named_volumes(compose_model, repo_root):
    expected = {"mysql": "/var/lib/mysql", "mongodb": "/data/db", "rabbitmq": "/var/lib/rabbitmq"}
    for name, target in expected.items():
        mounts = {m["target"]: m for m in compose_model["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume", name
        assert mounts[target]["source"] in compose_model["volumes"], name


def test_init_sql_is_mounted_read_only_into_the_mysql_init_dir(compose_model, repo_root):
    mounts = [m for m in compose_model["services"]["mysql"]["volumes"] if m["type"] == "bind"]
    assert len(mounts) == 1
    assert Path(mounts[0]["source"]) == repo_root / "init.sql"
    assert mounts[0]["target"].startswith("/docker-entrypoint-initdb.d/")
    assert mounts[0]["target"].endswith(".sql")
    assert mounts[0]["read_only"] is True


def binds(service: dict, repo_root: Path) -> dict:
    return {Path(m["source"]).relative_to(repo_root).as_posix(): m for m in service["volumes"] if m["type"] == "bind"}


def test_mongodb_creates_the_service_users_on_its_first_start(compose_model, repo_root):
    mounts = binds(compose_model["services"]["mongodb"], repo_root)
    assert set(mounts) == {"init/mongodb-users.js"}
    assert mounts["init/mongodb-users.js"]["target"] == "/docker-entrypoint-initdb.d/mongodb-users.js"
    assert mounts["init/mongodb-users.js"]["read_only"] is True


def test_rabbitmq_loads_the_users_written_from_env_before_the_images_own_entrypoint(compose_model, repo_root):
    service = compose_model["services"]["rabbitmq"]
    mounts = binds(service, repo_root)
    assert set(mounts) == {"init/rabbitmq-definitions.sh", "init/rabbitmq.conf"}
    assert all(mount["read_only"] for mount in mounts.values())
    assert service["entrypoint"] == ["sh", mounts["init/rabbitmq-definitions.sh"]["target"]]
    # The official image's own ENTRYPOINT and CMD, which the script then runs.
    assert service["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]
    assert re.fullmatch(r"/etc/rabbitmq/conf\.d/\d\d-[a-z0-9-]+\.conf", mounts["init/rabbitmq.conf"]["target"])


def test_auth_can_log_in_to_mysql_8(compose_model, repo_root):
    """MySQL 8 accounts use caching_sha2_password; PyMySQL needs `cryptography` for it over plain TCP."""
    image = compose_model["services"]["mysql"]["image"]
    major = int(re.match(r"mysql:(\d+)", image).group(1))
    if major < 8:
        return
    requirements = " ".join(
        (repo_root / "services" / name / "requirements.txt").read_text().lower() for name in ("auth", "common")
    )
    command = " ".join(compose_model["services"]["mysql"].get("command") or [])
    assert (
        re.search(r"^(cryptography|pymysql\[rsa\])\s*==", requirements, re.MULTILINE)
        or "mysql_native_password" in command
    ), (
        f"{image} creates MYSQL_USER with caching_sha2_password: add a pinned `cryptography` to "
        "services/auth/requirements.txt (PyMySQL's [rsa] extra), or auth cannot log in"
    )


# ---------------------------------------------------------------- variables: names, values, secrets


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_containers_get_exactly_their_services_variables(
    compose_model, service_variables, container_variables, name
):
    """Least privilege: the variables common.settings says the service reads, no more, no fewer, and the
    standard ones that name the container (OTEL_SERVICE_NAME: the service's own name)."""
    environment = compose_model["services"][name]["environment"]
    wanted = service_variables[name] | set(container_variables[name])
    assert set(environment) == wanted, f"{name}: missing {sorted(wanted - set(environment))}, " + (
        f"extra {sorted(set(environment) - wanted)}"
    )
    assert {key: environment[key] for key in container_variables[name]} == container_variables[name]


def test_app_values_come_from_env_except_where_they_run(
    make_env, read_env, compose_config, env_example, service_variables
):
    # A distinct value for every variable that compose should pass through from .env untouched.
    passed = [n for n in env_example.app if n not in FIXED_IN_CONTAINERS and n not in BUILT_FROM_CREDENTIALS]
    env_file = make_env({n: f"from_env_{n.lower()}" for n in passed if n != "DEV_RELOAD"}, sentinel_secrets=True)
    values = read_env(env_file)
    model = compose_config(env_file=env_file)["services"]
    for name in APP_SERVICES:
        environment = model[name]["environment"]
        own = service_variables[name]
        for variable in own.intersection(passed):
            expected = "false" if variable == "DEV_RELOAD" and name in FLASK_SERVICES else values[variable]
            assert environment[variable] == expected, f"{name}: {variable}"
        for variable, value in FIXED_IN_CONTAINERS.items():
            if variable in own:
                assert environment[variable] == value, f"{name}: {variable}"
        for variable, template in BUILT_FROM_CREDENTIALS.items():
            if variable in own:
                expected = template.replace("SERVICE", name.upper()).format(**values)
                assert environment[variable] == expected, f"{name}: {variable}"


@pytest.mark.parametrize("in_env", ["true", "false"])
def test_gunicorn_reloads_code_under_watch_only(make_env, compose_config, repo_root, in_env):
    """`--watch` syncs auth's and gateway's code: gunicorn reloads it, whatever .env says. Without watch it
    never reloads (the code cannot change anyway). The consumers restart instead (sync+restart) and do not
    read DEV_RELOAD, so they do not get it."""
    env_file = make_env({"DEV_RELOAD": in_env})
    plain = compose_config(env_file=env_file)["services"]
    dev = compose_config(env_file=env_file, files=[repo_root / f for f in DEV_FILES])["services"]
    assert {plain[n]["environment"]["DEV_RELOAD"] for n in FLASK_SERVICES} == {"false"}
    assert {dev[n]["environment"]["DEV_RELOAD"] for n in FLASK_SERVICES} == {"true"}
    assert not any("DEV_RELOAD" in model[n]["environment"] for n in CONSUMERS for model in (plain, dev))


def test_each_secret_reaches_only_the_containers_that_read_it(
    make_env, read_env, compose_config, env_example, secret_holders
):
    """JWT_SECRET, MYSQL_PASSWORD and ADMIN_PASSWORD reach auth alone (and MYSQL_PASSWORD the mysql
    container that creates the user), SMTP_PASSWORD notification alone; by name and by value."""
    env_file = make_env({"SMTP_PASSWORD": "sentinel_smtp_password_compose"}, sentinel_secrets=True)
    values = read_env(env_file)
    model = compose_config(env_file=env_file, profiles=["*"])["services"]
    assert set(secret_holders) >= env_example.secrets, "a [secret] of .env.example without its holders in conftest"
    for secret, holders in secret_holders.items():
        assert values[secret].startswith("sentinel_"), secret
        by_value = {
            name
            for name, service in model.items()
            if any(values[secret] in str(value) for value in (service.get("environment") or {}).values())
        }
        assert by_value == holders, f"{secret} reaches {sorted(by_value)}, only {sorted(holders)} may hold it"
        if secret in env_example.app:
            by_name = {name for name in APP_SERVICES if secret in model[name]["environment"]}
            assert by_name == holders & set(APP_SERVICES), f"{secret} is given to {sorted(by_name)}"


@pytest.mark.parametrize("name", BACKING_SERVICES)
def test_backing_containers_get_only_what_their_image_reads(compose_model, compose_env, name):
    environment = compose_model["services"][name]["environment"]
    assert environment == {key: compose_env[source] for key, source in BACKING_ENVIRONMENT[name].items()}


def test_mailpit_gets_no_variables(compose_model):
    assert not compose_model["services"]["mailpit"].get("environment")


def test_every_secret_reaches_its_containers_from_env(compose_model, compose_env, env_example):
    """Each [secret] of the temporary .env (a sentinel) is what the containers get, wherever they get it."""
    text = json.dumps(compose_model)
    for name in env_example.secrets:
        assert compose_env[name].startswith("sentinel_")
        assert compose_env[name] in text, f"{name} from .env reaches no container"
    sentinels = {compose_env[name] for name in env_example.secrets}
    for service_name, service in compose_model["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key in env_example.defaults:
                continue  # compared with .env above
            if SECRET_LOOKING.search(key):
                assert value in sentinels, f"{service_name}: {key} does not come from .env"


@pytest.mark.parametrize("path", ["compose.yaml", "compose.override.yaml", ".devcontainer/compose.devcontainer.yaml"])
def test_no_literal_secret_in_compose_files(repo_root, env_example, path):
    text = (repo_root / path).read_text()
    # A secret-looking key always takes an interpolated value.
    for match in re.finditer(r"^\s*-?\s*([A-Z0-9_]+)\s*[:=]\s*(\S.*)$", text, re.MULTILINE):
        key, value = match.groups()
        if SECRET_LOOKING.search(key) and not key.endswith("_FILE"):
            assert value.startswith("${") or value.startswith('"$$'), f"{path}: {key}: {value}"
    # Credentials in URLs are interpolated too.
    for userinfo in re.findall(r"://([^/\s@]*)@", text):
        assert re.fullmatch(r"(\$\{[^}]+\})(:\$\{[^}]+\})?", userinfo), f"{path}: literal credentials {userinfo}"
    # And a secret never has a default that would be written here.
    for name in env_example.secrets:
        assert not re.search(r"\$\{" + name + r":?-", text), f"{path}: a default value for {name}"


# ---------------------------------------------------------------- scripts/up


@pytest.fixture
def fake_clone(tmp_path, repo_root):
    """A copy of what scripts/up needs, and a `docker` that records how it is called."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for path in ("scripts/up", "scripts/init-env", ".env.example", "compose.yaml", "compose.override.yaml"):
        shutil.copy2(repo_root / path, clone / path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'echo "$* | profiles=${{COMPOSE_PROFILES:-}} smtp=${{SMTP_HOST:-}}'
        f' traces=${{OTEL_TRACES_EXPORTER:-}}${{DEBUG:+ debug=$DEBUG}}" >> "{log}"\n'
        'if [ "$1" = info ] && [ -n "${FAKE_NO_ENGINE:-}" ]; then exit 1; fi\n'
        'if [ "$1 $2" = "compose version" ] && [ -n "${FAKE_NO_COMPOSE:-}" ]; then exit 1; fi\n'
        "exit 0\n"
    )
    docker.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    # A machine without docker at all: only what scripts/up runs before it looks for docker.
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    (bare / "dirname").symlink_to(shutil.which("dirname"))

    def run(*args, no_docker=False, **extra_env):
        return subprocess.run(
            [shutil.which("bash"), str(clone / "scripts" / "up"), *args],
            cwd=tmp_path,
            env={"PATH": str(bare) if no_docker else path, "HOME": str(tmp_path), **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls():
        return log.read_text().splitlines() if log.exists() else []

    return clone, run, calls


def test_up_from_a_fresh_clone_makes_env_then_runs_compose_watch(fake_clone, read_env, env_example):
    clone, run, calls = fake_clone
    result = run()
    assert result.returncode == 0, result.stderr
    values = read_env(clone / ".env")
    assert set(values) == set(env_example.defaults)
    assert all(values[name] for name in env_example.secrets)
    assert calls()[-1].startswith("compose up --build --watch |")


def test_up_keeps_an_existing_env(fake_clone):
    clone, run, _calls = fake_clone
    assert run().returncode == 0
    before = (clone / ".env").read_text()
    assert run().returncode == 0
    assert (clone / ".env").read_text() == before


def test_up_mail_and_detach(fake_clone):
    _clone, run, calls = fake_clone
    assert run("--mail").returncode == 0
    assert calls()[-1] == (
        "compose up --build --watch | profiles=mail smtp=mailpit traces="
    )
    assert run("--detach", "--", "gateway").returncode == 0
    assert calls()[-1] == "compose -f compose.yaml up --build --detach --wait gateway | profiles= smtp= traces="


def test_up_observe_starts_the_profile_and_sends_the_traces_to_jaeger(fake_clone):
    _clone, run, calls = fake_clone
    assert run("--observe").returncode == 0
    assert calls()[-1] == (
        "compose up --build --watch | profiles=observe smtp= traces=otlp"
    )
    assert run("--mail", "--observe", "--detach").returncode == 0
    assert calls()[-1] == (
        "compose -f compose.yaml up --build --detach --wait | profiles=mail,observe smtp=mailpit traces=otlp")


@pytest.mark.parametrize("missing, says", [
    ({"no_docker": True}, "no Docker found"),
    ({"FAKE_NO_COMPOSE": "1"}, "Docker Compose v2 ('docker compose') is missing"),
    ({"FAKE_NO_ENGINE": "1"}, "start Docker"),
], ids=["no-docker", "no-compose", "no-engine"])
def test_up_without_containers_says_why_and_offers_run_local(fake_clone, missing, says):
    clone, run, calls = fake_clone
    result = run(**missing)
    assert result.returncode == 1
    assert says in result.stderr
    assert result.stderr.strip().endswith("scripts/run-local"), result.stderr
    assert not any(" up " in f" {c}" for c in calls())
    assert not (clone / ".env").exists()


def test_up_debug_hands_debug_to_the_development_stack(fake_clone):
    _clone, run, calls = fake_clone
    assert run("--debug").returncode == 0
    assert calls()[-1] == "compose up --build --watch | profiles= smtp= traces= debug=true"
    refused = run("--debug", "--detach")
    assert refused.returncode == 2 and "--detach leaves out" in refused.stderr


def test_up_help(fake_clone):
    _clone, run, calls = fake_clone
    result = run("--help")
    assert result.returncode == 0 and "docker compose up --build --watch" in (
        " ".join(result.stdout.split()))
    assert calls() == []
