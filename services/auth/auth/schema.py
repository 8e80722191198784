"""Bring a users database made by an older init.sql up to date; run by auth at every start.

init.sql runs only on a server's first start, so an existing database keeps the schema it was made
with. Each step here looks before it changes anything, so every start (and every replica starting
at once) may run them all:

1. the e-mail columns compare byte for byte (utf8mb4_bin), as init.sql now makes them;
2. users gains token_version;
3. stored addresses take their normalised spelling (auth.emails), the one logins look up.
"""

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from auth.emails import InvalidEmail, normalise

log = logging.getLogger(__name__)

BINARY = "utf8mb4_bin"
EMAIL_COLUMNS = ("users", "login_failures")
NEW_COLUMNS = {("users", "token_version"): "INT UNSIGNED NOT NULL DEFAULT 0"}


def upgrade(engine: Engine) -> None:
    if engine.dialect.name not in ("mysql", "mariadb"):
        return  # the unit tests' SQLite is made from auth.users' metadata, already current
    with engine.begin() as db:
        for table in EMAIL_COLUMNS:
            _make_binary(db, table)
        for (table, column), definition in NEW_COLUMNS.items():
            _add_column(db, table, column, definition)
        _normalise_addresses(db)


def _column(db: Connection, table: str, column: str):
    return db.execute(
        sa.text("SELECT COLLATION_NAME AS collation FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table AND COLUMN_NAME = :column"),
        {"table": table, "column": column},
    ).first()


def _make_binary(db: Connection, table: str) -> None:
    column = _column(db, table, "email")
    if column is None or column.collation == BINARY:
        return
    # The table names are this module's constants, never input.
    db.execute(sa.text(
        f"ALTER TABLE {table} MODIFY email VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {BINARY} NOT NULL"))
    log.info("schema upgraded: e-mails compared byte for byte", extra={"table": table, "was": column.collation})


def _add_column(db: Connection, table: str, column: str, definition: str) -> None:
    if _column(db, table, column) is None:
        db.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {definition}"))
        log.info("schema upgraded: column added", extra={"table": table, "column": column})


def _normalise_addresses(db: Connection) -> None:
    rows = db.execute(sa.text("SELECT id, email FROM users")).all()
    taken = {row.email for row in rows}
    for row in rows:
        try:
            email = normalise(row.email)
        except InvalidEmail as error:
            log.warning("a stored address can no longer log in; delete it with scripts/delete-user",
                        extra={"user_id": row.id, "reason": str(error)})
            continue
        if email == row.email:
            continue
        if email in taken:
            log.warning("two accounts share one normalised address; the other keeps it",
                        extra={"user_id": row.id, "email": email})
            continue
        db.execute(sa.text("UPDATE users SET email = :email WHERE id = :id"), {"email": email, "id": row.id})
        taken.add(email)
