"""The users and login_failures tables (init.sql), through SQLAlchemy Core: SQL only with parameters."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()),
)

login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("email", sa.String(255), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)


class DuplicateUser(Exception):
    pass


@dataclass(frozen=True)
class User:
    email: str
    password_hash: str
    is_admin: bool


def _utcnow() -> datetime:
    # Naive UTC: what both MySQL TIMESTAMP (through PyMySQL) and SQLite hand back.
    return datetime.now(UTC).replace(tzinfo=None)


class UserStore:
    def __init__(self, engine: Engine):
        self._engine = engine

    def get(self, email: str) -> User | None:
        with self._engine.connect() as db:
            row = db.execute(
                sa.select(users.c.email, users.c.password_hash, users.c.is_admin).where(users.c.email == email)
            ).first()
        return User(row.email, row.password_hash, bool(row.is_admin)) if row else None

    def add(self, email: str, password_hash: str, is_admin: bool = False) -> None:
        try:
            with self._engine.begin() as db:
                db.execute(users.insert().values(email=email, password_hash=password_hash, is_admin=is_admin))
        except IntegrityError:
            raise DuplicateUser(email) from None

    def locked_for(self, email: str) -> int:
        """Seconds left before this account may try again; 0 when it is not throttled."""
        with self._engine.connect() as db:
            until = db.execute(
                sa.select(login_failures.c.locked_until).where(login_failures.c.email == email)
            ).scalar()
        if until is None:
            return 0
        return max(0, int((until - _utcnow()).total_seconds() + 0.999))

    def record_failure(self, email: str, max_failures: int, lockout_seconds: int) -> None:
        """Count a failed login; the max_failures-th in a row locks the account for lockout_seconds."""
        row = login_failures.c
        with self._engine.begin() as db:
            updated = db.execute(
                login_failures.update().where(row.email == email).values(failures=row.failures + 1)
            ).rowcount
            if not updated:
                try:
                    with db.begin_nested():
                        db.execute(login_failures.insert().values(email=email, failures=1))
                except IntegrityError:  # another replica inserted it first
                    db.execute(
                        login_failures.update().where(row.email == email).values(failures=row.failures + 1)
                    )
            db.execute(
                login_failures.update()
                .where(row.email == email, row.failures >= max_failures)
                .values(failures=0, locked_until=_utcnow() + timedelta(seconds=lockout_seconds))
            )

    def clear_failures(self, email: str) -> None:
        with self._engine.begin() as db:
            db.execute(login_failures.delete().where(login_failures.c.email == email))

    def ping(self) -> None:
        with self._engine.connect() as db:
            db.execute(sa.text("SELECT 1"))
