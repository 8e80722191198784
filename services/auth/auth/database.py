"""The MySQL engine, from settings."""

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from common.settings import MySQLSettings


def mysql_url(settings: MySQLSettings, database: str | None = None) -> URL:
    return URL.create(
        "mysql+pymysql",
        username=settings.mysql_user,
        password=settings.mysql_password.get_secret_value() or None,
        host=settings.mysql_host,
        port=settings.mysql_port,
        database=settings.mysql_db if database is None else database or None,
        query={"charset": "utf8mb4"},
    )


def engine_for(settings: MySQLSettings) -> Engine:
    return sa.create_engine(
        mysql_url(settings),
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "read_timeout": 10, "write_timeout": 10},
    )
