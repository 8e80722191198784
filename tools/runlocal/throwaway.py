"""A throwaway stack on real servers: the four services wired as scripts/run-local wires them, in
this process, with a database and queue names of their own that are dropped afterwards.

Used by the integration and fault suites and by the benchmarks. MySQL (or MariaDB) and RabbitMQ
are where MYSQL_* and RABBITMQ_URL point, by default a local root without password and guest on
127.0.0.1; MongoDB is the in-process mongomock unless MONGODB_URI names a server.
"""

import contextlib
import os
import secrets
import socket
import urllib.parse

import pika
import sqlalchemy as sa

from common.broker import connection_parameters, dead_letter_queue
from runlocal import mongo


def server_env(mongodb_uri: str | None = None) -> dict[str, str]:
    return {
        "MYSQL_HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "MYSQL_PORT": os.environ.get("MYSQL_PORT", "3306"),
        "MYSQL_USER": os.environ.get("MYSQL_USER", "root"),
        "MYSQL_PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "RABBITMQ_URL": os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        "MONGODB_URI": mongodb_uri or os.environ.get("MONGODB_URI", mongo.MEMORY),
    }


def unreachable(env: dict[str, str]) -> list[str]:
    """The servers of `env` that do not accept a connection, as "MySQL at host:port"."""
    amqp = urllib.parse.urlparse(env["RABBITMQ_URL"])
    missing = []
    for name, host, port in (("MySQL", env["MYSQL_HOST"], int(env["MYSQL_PORT"])),
                             ("RabbitMQ", amqp.hostname, amqp.port or 5672)):
        try:
            with socket.create_connection((host, port), timeout=2):
                pass
        except OSError:
            missing.append(f"{name} at {host}:{port}")
    return missing


def throwaway_env(servers: dict[str, str], name: str, heartbeat_file: str, **overrides: str) -> dict[str, str]:
    """Every variable of one stack: the servers, names of its own, and a fresh JWT secret and admin."""
    return {
        **servers,
        "MYSQL_DB": f"mp3test_{name}",
        "MONGODB_DB": f"mp3test_{name}",
        "VIDEO_QUEUE": f"test.video.{name}",
        "MP3_QUEUE": f"test.mp3.{name}",
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "MAX_UPLOAD_MB": "64",
        # Load tests and benchmarks upload as one user, many at a time; the limit has tests of its own.
        "MAX_ACTIVE_JOBS_PER_USER": "1000",
        "MAX_EVENT_STREAMS_PER_USER": "1000",
        "MAX_UPLOADS_IN_FLIGHT": "1000",
        "LOGIN_MAX_FAILURES": "5",
        "LOGIN_LOCKOUT_SECONDS": "60",
        # Every test client logs in from 127.0.0.1; the tests of the limit itself set their own.
        "LOGIN_ATTEMPTS_PER_CLIENT": "10000/minute",
        "PUBLIC_URL": "http://localhost:8080",
        "HEARTBEAT_FILE": heartbeat_file,
        "SMTP_HOST": "",
        "LOG_LEVEL": "INFO",
        **overrides,
    }


def drop(env: dict[str, str]) -> None:
    """Remove what a stack of `env` made: its database, its queues and their dead letters, its MongoDB data."""
    url = sa.engine.URL.create("mysql+pymysql", username=env["MYSQL_USER"], password=env["MYSQL_PASSWORD"] or None,
                               host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]))
    engine = sa.create_engine(url)
    with engine.begin() as db:
        db.execute(sa.text(f"DROP DATABASE IF EXISTS `{env['MYSQL_DB']}`"))
    engine.dispose()
    connection = pika.BlockingConnection(connection_parameters(env["RABBITMQ_URL"]))
    channel = connection.channel()
    for queue in (env["VIDEO_QUEUE"], env["MP3_QUEUE"]):
        channel.queue_delete(queue)
        channel.queue_delete(dead_letter_queue(queue))
    connection.close()
    mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"]).client.drop_database(env["MONGODB_DB"])


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """os.environ with `env` on top, for as long as settings are being read; then as it was."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def running_stack(env: dict[str, str], converters: int = 1):
    """The four services in this process, ready; every setting is read at start, from `env` alone."""
    from runlocal import stack as runlocal_stack

    with environment(env):
        running = runlocal_stack.start(auth_port=0, gateway_port=0, metrics_port=0, converters=converters)
    try:
        running.wait_ready(require_consumers=converters > 0)
        yield running
    finally:
        running.stop()
        drop(env)
