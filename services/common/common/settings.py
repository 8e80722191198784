"""Every variable the services read, typed, in one place.

Each service loads only the groups it needs; `load` turns a missing or malformed variable into one
clear message that names it, so a service stops at start instead of failing later.
"""

import ipaddress
from typing import Annotated, Literal, TypeVar

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveInt = Annotated[int, Field(gt=0)]
Port = Annotated[int, Field(gt=0, lt=65536)]


class _FromEnv(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")


class LoggingSettings(_FromEnv):
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class TelemetrySettings(_FromEnv):
    """The standard OpenTelemetry variables the services use (common.telemetry)."""

    otel_traces_exporter: Literal["otlp", "console", "none"] = "none"
    otel_exporter_otlp_endpoint: HttpUrl = HttpUrl("http://127.0.0.1:4318")


class MySQLSettings(_FromEnv):
    mysql_host: str
    mysql_port: Port = 3306
    mysql_user: str
    mysql_password: SecretStr = SecretStr("")
    mysql_db: str = Field(pattern=r"^[A-Za-z0-9_]+$")


# HS256 is as strong as its key: RFC 7518 asks for at least 256 bits.
MIN_JWT_SECRET_BYTES = 32


class JWTSettings(_FromEnv):
    jwt_secret: SecretStr
    jwt_ttl_seconds: PositiveInt = 86400

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_JWT_SECRET_BYTES} bytes long (scripts/init-env makes a random one)")
        return secret


class HTTPServerSettings(_FromEnv):
    http_workers: PositiveInt = 2
    http_threads: PositiveInt = 8
    dev_reload: bool = False


class AuthSettings(LoggingSettings, TelemetrySettings, MySQLSettings, JWTSettings, HTTPServerSettings):
    auth_port: Port = 5000
    admin_email: str = ""
    admin_password: SecretStr = SecretStr("")
    login_max_failures: PositiveInt = 5
    login_lockout_seconds: PositiveInt = 300


class MongoSettings(_FromEnv):
    mongodb_uri: str
    mongodb_db: str = "mp3converter"


class BrokerSettings(_FromEnv):
    rabbitmq_url: str = Field(pattern=r"^amqps?://")
    video_queue: str = Field("video", min_length=1)
    mp3_queue: str = Field("mp3", min_length=1)
    max_attempts: PositiveInt = 3


class GatewaySettings(LoggingSettings, TelemetrySettings, MongoSettings, BrokerSettings, HTTPServerSettings):
    gateway_port: Port = 8080
    auth_svc_address: HttpUrl
    auth_timeout_seconds: Annotated[float, Field(gt=0)] = 3.0
    # How long an accepted token is taken on trust before auth is asked again: the most time a deleted
    # user or a changed password leaves an old token working.
    token_cache_seconds: Annotated[int, Field(ge=0, le=60)] = 60
    # Logins one client address may try (gateway/login_limit.py), in the `limits` notation.
    login_attempts_per_client: str = Field("10/minute", pattern=r"^\d+ ?(/|per) ?(\d+ )?(second|minute|hour|day)s?$")
    # Proxies in front of the gateway whose X-Forwarded-For is believed: comma-separated addresses or
    # networks (the Ingress controller's). Empty: the connection's own address is the client.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value
    max_upload_mb: PositiveInt = 1024
    max_active_jobs_per_user: PositiveInt = 5
    # Event streams (GET /jobs/<id>/events) one user may hold open at once, in each gateway process.
    max_event_streams_per_user: PositiveInt = 10
    # Uploads one gateway process receives at once, whoever sends them; one more gets 429 before its body
    # is read. Each takes up to about 20 MiB while it is stored.
    max_uploads_in_flight: PositiveInt = 6


class ConsumerSettings(LoggingSettings, TelemetrySettings, MongoSettings, BrokerSettings):
    heartbeat_file: str = "/tmp/heartbeat"
    # 0: hand the message in hand back at once (compose.override.yaml: for the new code to take it).
    shutdown_grace_seconds: Annotated[int, Field(ge=0)] = 20
    # Where the consumer serves /metrics (auth and gateway serve it on their own port).
    metrics_port: Port = 9464


class ConverterSettings(ConsumerSettings):
    convert_timeout_seconds: PositiveInt = 3600
    max_duration_seconds: PositiveInt = 14400
    keep_videos: bool = False
    retention_days: Annotated[int, Field(ge=0)] = 7
    cleanup_interval_seconds: PositiveInt = 3600
    # Hours after its last chunk that an upload with no files document (its process died) is deleted.
    unfinished_upload_grace_hours: PositiveInt = 24


class NotificationSettings(ConsumerSettings):
    # The address users reach the gateway at, for the download link in the notice.
    public_url: HttpUrl = HttpUrl("http://localhost:8080")
    smtp_host: str = ""
    smtp_port: Port = 25
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "converter@localhost"
    smtp_starttls: bool = False


class DebuggerSettings(_FromEnv):
    """Development only (common.debugger): read by each process at start, apart from its service's settings,
    so that production containers, which never get these, are unchanged."""

    debug: bool = False
    debug_port: Port = 5678


SERVICE_SETTINGS = {
    "auth": AuthSettings,
    "gateway": GatewaySettings,
    "converter": ConverterSettings,
    "notification": NotificationSettings,
}
ALL_SETTINGS = tuple(SERVICE_SETTINGS.values())


def service_of(settings: BaseSettings) -> str:
    """The service a settings object is for: `gateway` for GatewaySettings."""
    return next(name for name, cls in SERVICE_SETTINGS.items() if type(settings) is cls)


# Standard variables about the container rather than the stack, so they are not in .env (one value cannot
# name four services): compose and Kubernetes give each service's container its own. auth and the gateway
# run gunicorn's workers, which add up their metrics in PROMETHEUS_MULTIPROC_DIR (under the writable /tmp;
# common.metrics). The consumers must not have it at all: prometheus_client takes even an empty value for
# multiprocess mode.
def container_variables(service: str) -> dict[str, str]:
    variables = {"OTEL_SERVICE_NAME": service}
    if service in ("auth", "gateway"):
        variables["PROMETHEUS_MULTIPROC_DIR"] = "/tmp/metrics"
    return variables

S = TypeVar("S", bound=BaseSettings)


class ConfigurationError(SystemExit):
    """Raised at start-up; its text names each bad variable and says what is wrong with it."""


def load(settings_class: type[S], **overrides) -> S:
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        problems = [f"  {'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()]
        raise ConfigurationError(
            "Invalid configuration (set these environment variables, or run scripts/init-env):\n"
            + "\n".join(problems)
        ) from None


def variable_names(service: str | None = None) -> set[str]:
    """The names of the variables one service reads, or of every variable some service reads.

    Each container is given exactly its own service's: JWT_SECRET reaches auth alone."""
    classes = ALL_SETTINGS if service is None else (SERVICE_SETTINGS[service],)
    return {name.upper() for cls in classes for name in cls.model_fields}
