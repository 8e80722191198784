"""Create the configured MySQL database and apply init.sql when they are missing."""

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from auth.database import mysql_url
from common.settings import MySQLSettings

INIT_SQL = Path(__file__).resolve().parents[2] / "init.sql"


def statements(sql: str) -> list[str]:
    without_comments = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in without_comments.split(";") if statement.strip()]


def prepare(settings: MySQLSettings) -> None:
    server = sa.create_engine(mysql_url(settings, database=""), connect_args={"connect_timeout": 5})
    try:
        with server.begin() as db:
            # The name is checked against ^[A-Za-z0-9_]+$ by the settings; identifiers cannot be bound.
            db.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{settings.mysql_db}`"))
            db.execute(sa.text(f"USE `{settings.mysql_db}`"))
            for statement in statements(INIT_SQL.read_text()):
                db.execute(sa.text(statement))
    except OperationalError as error:
        raise SystemExit(
            f"Cannot prepare MySQL database {settings.mysql_db!r} at {settings.mysql_host}:{settings.mysql_port} "
            f"as {settings.mysql_user!r}: {error.orig}.\nSet MYSQL_USER / MYSQL_PASSWORD to an account of that "
            "server (a local MariaDB root often has an empty password: MYSQL_USER=root MYSQL_PASSWORD=)."
        ) from None
    finally:
        server.dispose()
