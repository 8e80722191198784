"""The users and login_failures tables (init.sql), through SQLAlchemy Core: SQL only with parameters.

Addresses arrive here normalised (auth.emails); the columns compare byte for byte (auth.schema).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("token_version", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()),
)

login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("email", sa.String(255), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)

# InnoDB's answers to two transactions that wait on each other: the loser may simply run again.
_DEADLOCK, _LOCK_WAIT_TIMEOUT = 1213, 1205
_ATTEMPT_TRIES = 5
# How long the attempt that reaches the limit locks the account while the checks in flight settle
# (a check takes well under a second; a process that dies mid-check holds the lock no longer).
SETTLE_SECONDS = 10


class DuplicateUser(Exception):
    pass


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str
    is_admin: bool
    token_version: int


def _utcnow() -> datetime:
    # Naive UTC: what both MySQL TIMESTAMP (through PyMySQL) and SQLite hand back.
    return datetime.now(UTC).replace(tzinfo=None)


class UserStore:
    def __init__(self, engine: Engine):
        self._engine = engine

    def get(self, email: str) -> User | None:
        columns = users.c
        with self._engine.connect() as db:
            row = db.execute(
                sa.select(columns.id, columns.email, columns.password_hash, columns.is_admin, columns.token_version)
                .where(columns.email == email)
            ).first()
        return User(row.id, row.email, row.password_hash, bool(row.is_admin), row.token_version) if row else None

    def add(self, email: str, password_hash: str, is_admin: bool = False) -> None:
        try:
            with self._engine.begin() as db:
                db.execute(users.insert().values(email=email, password_hash=password_hash, is_admin=is_admin))
        except IntegrityError:
            raise DuplicateUser(email) from None

    def set_password(self, email: str, password_hash: str) -> bool:
        """Change a password; every token issued before stops validating. False: no such user."""
        with self._engine.begin() as db:
            changed = db.execute(
                users.update().where(users.c.email == email)
                .values(password_hash=password_hash, token_version=users.c.token_version + 1)
            ).rowcount
        return changed == 1

    def delete(self, email: str) -> bool:
        """Remove a user (their tokens stop validating) and their login record. False: no such user."""
        with self._engine.begin() as db:
            deleted = db.execute(users.delete().where(users.c.email == email)).rowcount
            db.execute(login_failures.delete().where(login_failures.c.email == email))
        return deleted == 1

    def begin_attempt(self, email: str, max_failures: int) -> int:
        """Count a login attempt before its password is checked: 0 when it may be checked now, else
        the seconds left of the account's lock (and nothing is counted).

        The count is read and written under the row's lock in one transaction, so that concurrent
        attempts on every replica take turns: once max_failures attempts since the last success are
        counted, no further password is checked. The max_failures-th attempt locks the account for
        SETTLE_SECONDS only, while the checks in flight settle: a failure makes it the full lock
        (`record_failure`), a success clears the count and the lock
        (`clear_failures`), so that a user's own logins at once never lock them out."""
        for attempt in range(_ATTEMPT_TRIES):
            try:
                with self._engine.begin() as db:
                    return self._count(db, email, max_failures)
            except OperationalError as error:
                code = error.orig.args[0] if error.orig is not None and error.orig.args else None
                if code not in (_DEADLOCK, _LOCK_WAIT_TIMEOUT) or attempt == _ATTEMPT_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _count(self, db: Connection, email: str, max_failures: int) -> int:
        row = login_failures.c
        db.execute(self._ensure_row(db, email))
        failures, locked_until = db.execute(
            sa.select(row.failures, row.locked_until).where(row.email == email).with_for_update()
        ).one()
        now = _utcnow()
        if locked_until is not None and locked_until > now:
            return max(1, int((locked_until - now).total_seconds() + 0.999))
        failures = (0 if locked_until is not None else failures) + 1  # an expired lock starts afresh
        lock = now + timedelta(seconds=SETTLE_SECONDS) if failures >= max_failures else None
        db.execute(login_failures.update().where(row.email == email).values(failures=failures, locked_until=lock))
        return 0

    def record_failure(self, email: str, max_failures: int, lockout_seconds: int) -> None:
        """A wrong password: once max_failures attempts are counted, the account is locked for
        lockout_seconds (a success that came first has cleared the count, and nothing is locked)."""
        row = login_failures.c
        with self._engine.begin() as db:
            db.execute(login_failures.update()
                       .where(row.email == email, row.failures >= max_failures)
                       .values(locked_until=_utcnow() + timedelta(seconds=lockout_seconds)))

    def _ensure_row(self, db: Connection, email: str):
        """An insert of the account's row that does nothing when it is there. On MySQL it takes the
        row's exclusive lock at once (a plain INSERT that fails would take a shared one, and two such
        waiters deadlock when they both ask for the exclusive lock next)."""
        if db.dialect.name == "sqlite":
            return sqlite.insert(login_failures).values(email=email, failures=0).on_conflict_do_nothing()
        return (mysql.insert(login_failures).values(email=email, failures=0)
                .on_duplicate_key_update(failures=login_failures.c.failures))

    def clear_failures(self, email: str) -> None:
        with self._engine.begin() as db:
            db.execute(login_failures.delete().where(login_failures.c.email == email))

    def ping(self) -> None:
        with self._engine.connect() as db:
            db.execute(sa.text("SELECT 1"))
