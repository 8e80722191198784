"""common.settings against .env.example: one list of variables, each documented, each checked at start."""

from pathlib import Path

import pytest

from common.settings import (
    ALL_SETTINGS,
    AuthSettings,
    ConverterSettings,
    GatewaySettings,
    NotificationSettings,
    load,
    variable_names,
)
from tests.unit.envfile import ASSIGNMENT, EXAMPLE, variables

pytestmark = pytest.mark.usefixtures("clean_env")

ROOT = Path(__file__).resolve().parents[2]

# A value for each variable some service requires, valid for every service.
VALID = {
    "MYSQL_HOST": "127.0.0.1",
    "MYSQL_USER": "converter",
    "MYSQL_DB": "converter",
    "JWT_SECRET": "a-unit-test-secret-of-32-chars!!",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "MONGODB_URI": "mongodb://127.0.0.1:27017/",
    "AUTH_SVC_ADDRESS": "http://127.0.0.1:5000",
}


def example_lines() -> list[str]:
    return EXAMPLE.read_text().splitlines()


def backing_services_line() -> int:
    found = [i for i, line in enumerate(example_lines()) if line.startswith("# ----") and "backing services" in line]
    assert len(found) == 1, "one '# ---- ... backing services' line separates the services' variables"
    return found[0]


def app_variables() -> list[tuple[str, str, bool]]:
    return variables(example_lines()[: backing_services_line()])


def set_valid_env(monkeypatch) -> None:
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)


def problems(error: SystemExit) -> set[str]:
    """The variable names that load()'s message lists, one per '  NAME: what is wrong' line."""
    return {line.split(":")[0].strip() for line in str(error).splitlines() if line.startswith("  ")}


# ---------------------------------------------------------------- .env.example


def test_env_example_lists_exactly_the_variables_the_services_read():
    assert {name for name, _default, _secret in app_variables()} == variable_names()


def test_backing_service_variables_are_not_read_by_the_services():
    backing = {name for name, _d, _s in variables(example_lines()[backing_services_line():])}
    assert {"MYSQL_ROOT_PASSWORD", "RABBITMQ_PASSWORD"} <= backing
    assert not backing & variable_names()


def test_no_variable_is_listed_twice():
    names = [name for name, _d, _s in variables(example_lines())]
    assert sorted(names) == sorted(set(names))


def test_every_secret_has_an_empty_default():
    secrets = {name: default for name, default, secret in variables(example_lines()) if secret}
    assert {"JWT_SECRET", "ADMIN_PASSWORD", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"} <= set(secrets)
    assert {name: default for name, default in secrets.items() if default} == {}


def test_no_password_or_secret_is_committed_in_env_example():
    assert {name: default for name, default, _s in variables(example_lines())
            if ("PASSWORD" in name or "SECRET" in name) and default} == {}


def test_every_variable_is_documented_by_a_comment_in_its_block():
    blocks, block = [], []
    for line in [*example_lines(), ""]:
        if line.strip():
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    undocumented = []
    for lines in blocks:
        names = [m.group(1) for line in lines if (m := ASSIGNMENT.match(line))]
        comments = [line for line in lines
                    if line.startswith("#") and not line.startswith("# ----")
                    and line.lstrip("# ").replace("[secret]", "").strip()]
        if names and not comments:
            undocumented += names
    assert undocumented == []


def test_every_group_starts_with_a_comment():
    lines = example_lines()
    headers = [i for i, line in enumerate(lines) if line.startswith("# ----")]
    assert len(headers) >= 4
    for i in headers:
        assert lines[i].strip("#- ").strip(), f"line {i + 1}: a group header names its group"
        assert lines[i + 1].startswith("#"), f"line {i + 2}: the group {lines[i]!r} starts with a comment"


# ---------------------------------------------------------------- load()


def test_every_service_loads_from_valid_variables(monkeypatch):
    set_valid_env(monkeypatch)
    for settings_class in ALL_SETTINGS:
        load(settings_class)


REQUIRED = [(cls, name.upper()) for cls in ALL_SETTINGS for name, field in cls.model_fields.items()
            if field.is_required()]


def test_the_required_variables_are_the_documented_ones():
    required = {(cls.__name__, name) for cls, name in REQUIRED}
    assert {("AuthSettings", "JWT_SECRET"), ("AuthSettings", "MYSQL_HOST"), ("GatewaySettings", "RABBITMQ_URL"),
            ("GatewaySettings", "AUTH_SVC_ADDRESS"), ("ConverterSettings", "RABBITMQ_URL"),
            ("NotificationSettings", "RABBITMQ_URL")} <= required
    assert {name for _cls, name in REQUIRED} <= set(VALID)


@pytest.mark.parametrize(("settings_class", "name"), REQUIRED, ids=[f"{c.__name__}-{n}" for c, n in REQUIRED])
def test_a_missing_required_variable_stops_with_a_message_naming_it(monkeypatch, settings_class, name):
    set_valid_env(monkeypatch)
    monkeypatch.delenv(name)
    with pytest.raises(SystemExit) as raised:
        load(settings_class)
    assert problems(raised.value) == {name}


def test_several_missing_variables_are_all_named():
    with pytest.raises(SystemExit) as raised:
        load(AuthSettings)
    assert problems(raised.value) == {"MYSQL_HOST", "MYSQL_USER", "MYSQL_DB", "JWT_SECRET"}


MALFORMED = [
    (AuthSettings, "MYSQL_PORT", "abc"),
    (AuthSettings, "MYSQL_PORT", "70000"),
    (AuthSettings, "MYSQL_DB", "converter; DROP DATABASE converter"),
    (AuthSettings, "JWT_TTL_SECONDS", "-5"),
    (AuthSettings, "LOGIN_MAX_FAILURES", "0"),
    (AuthSettings, "LOG_LEVEL", "LOUD"),
    (AuthSettings, "DEV_RELOAD", "maybe"),
    (GatewaySettings, "MAX_UPLOAD_MB", "-1"),
    (GatewaySettings, "MAX_UPLOAD_MB", "ten"),
    (GatewaySettings, "RABBITMQ_URL", "http://x"),
    (GatewaySettings, "AUTH_SVC_ADDRESS", "not a url"),
    (GatewaySettings, "AUTH_TIMEOUT_SECONDS", "0"),
    (GatewaySettings, "GATEWAY_PORT", "0"),
    (GatewaySettings, "TOKEN_CACHE_SECONDS", "61"),
    (GatewaySettings, "TOKEN_CACHE_SECONDS", "-1"),
    (GatewaySettings, "LOGIN_ATTEMPTS_PER_CLIENT", "lots"),
    (GatewaySettings, "LOGIN_ATTEMPTS_PER_CLIENT", "10/fortnight"),
    (GatewaySettings, "TRUSTED_PROXIES", "10.0.0.0/8,the-ingress"),
    (GatewaySettings, "TRUSTED_PROXIES", "300.1.1.1"),
    (ConverterSettings, "RABBITMQ_URL", "http://x"),
    (ConverterSettings, "CONVERT_TIMEOUT_SECONDS", "soon"),
    (ConverterSettings, "KEEP_VIDEOS", "perhaps"),
    (ConverterSettings, "RETENTION_DAYS", "-1"),
    (ConverterSettings, "RETENTION_DAYS", "a week"),
    (ConverterSettings, "CLEANUP_INTERVAL_SECONDS", "0"),
    (ConverterSettings, "UNFINISHED_UPLOAD_GRACE_HOURS", "0"),
    (GatewaySettings, "MAX_EVENT_STREAMS_PER_USER", "0"),
    (GatewaySettings, "MAX_UPLOADS_IN_FLIGHT", "0"),
    (NotificationSettings, "SMTP_PORT", "abc"),
    (NotificationSettings, "VIDEO_QUEUE", ""),
    (GatewaySettings, "OTEL_TRACES_EXPORTER", "jaeger"),
    (AuthSettings, "OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4318"),
    (ConverterSettings, "METRICS_PORT", "0"),
    (NotificationSettings, "METRICS_PORT", "nine"),
]


@pytest.mark.parametrize(("settings_class", "name", "value"), MALFORMED,
                         ids=[f"{c.__name__}-{n}={v}" for c, n, v in MALFORMED])
def test_a_malformed_variable_stops_with_a_message_naming_it(monkeypatch, settings_class, name, value):
    set_valid_env(monkeypatch)
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as raised:
        load(settings_class)
    assert problems(raised.value) == {name}


def test_a_rejected_secret_is_not_echoed(monkeypatch):
    set_valid_env(monkeypatch)
    monkeypatch.setenv("JWT_SECRET", "tooshort-s3cr3t")
    with pytest.raises(SystemExit) as raised:
        load(AuthSettings)
    assert problems(raised.value) == {"JWT_SECRET"}
    assert "tooshort-s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("secret", ["x" * 31, "é" * 15 + "x", ""], ids=["31-ascii", "31-bytes-of-utf8", "empty"])
def test_a_jwt_secret_under_32_bytes_stops_auth_with_a_clear_message(monkeypatch, secret):
    set_valid_env(monkeypatch)
    monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(SystemExit) as raised:
        load(AuthSettings)
    assert problems(raised.value) == {"JWT_SECRET"}
    assert "at least 32 bytes" in str(raised.value)


@pytest.mark.parametrize("secret", ["x" * 32, "é" * 16], ids=["32-ascii", "32-bytes-of-utf8"])
def test_a_jwt_secret_of_32_bytes_is_enough(monkeypatch, secret):
    set_valid_env(monkeypatch)
    monkeypatch.setenv("JWT_SECRET", secret)
    assert load(AuthSettings).jwt_secret.get_secret_value() == secret


def test_an_empty_mysql_password_is_valid(monkeypatch):
    set_valid_env(monkeypatch)
    monkeypatch.setenv("MYSQL_PASSWORD", "")
    assert load(AuthSettings).mysql_password.get_secret_value() == ""


def test_values_come_from_the_environment(monkeypatch):
    set_valid_env(monkeypatch)
    monkeypatch.setenv("MAX_UPLOAD_MB", "7")
    monkeypatch.setenv("VIDEO_QUEUE", "videos-here")
    settings = load(GatewaySettings)
    assert (settings.max_upload_mb, settings.video_queue, settings.mp3_queue) == (7, "videos-here", "mp3")


@pytest.mark.parametrize("settings_class", [ConverterSettings, NotificationSettings])
def test_a_consumer_may_hand_its_message_back_at_once_but_not_before_it_started(monkeypatch, settings_class):
    """SHUTDOWN_GRACE_SECONDS=0 (compose.override.yaml: a consumer restarted for new code hands its message
    back at once); below that, the variable is named."""
    set_valid_env(monkeypatch)
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "0")
    assert load(settings_class).shutdown_grace_seconds == 0
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "-1")
    with pytest.raises(SystemExit, match="SHUTDOWN_GRACE_SECONDS"):
        load(settings_class)
