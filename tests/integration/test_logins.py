"""Logins against a real MariaDB: the lockout bypass a UCA collation allowed, the lock race, a write
error while counting, and the schema upgrade an existing database gets when auth starts.

Each test has a throwaway database of its own, made as the test needs it: with the schema init.sql
makes now, or with the one an older init.sql made under a server whose default collation ignores
characters such as U+200B (MySQL 8.4's utf8mb4_0900_ai_ci; here MariaDB's UCA collations)."""

import base64
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

import auth.passwords
from auth import schema
from auth.app import create_app
from auth.database import engine_for
from auth.users import UserStore
from common.settings import AuthSettings, MySQLSettings, load
from runlocal.database import prepare
from runlocal.throwaway import environment
from tests.unit.test_auth import locked

ALICE, ALICE_PASSWORD = "alice@example.com", "alice-password-1"
PADDED = ALICE + "\u200b" * 250  # the address of the attack: Alice's, then 250 zero-width spaces
MAX_FAILURES = 5
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# The users tables as init.sql made them before e-mails were compared byte for byte.
OLD_SCHEMA = """
CREATE TABLE users (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY users_email (email)
) DEFAULT CHARACTER SET utf8mb4 COLLATE {collation};
CREATE TABLE login_failures (
    email VARCHAR(255) NOT NULL PRIMARY KEY,
    failures INT UNSIGNED NOT NULL DEFAULT 0,
    locked_until TIMESTAMP NULL DEFAULT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE {collation}
"""
UCA_COLLATIONS = ["utf8mb4_unicode_ci", "utf8mb4_unicode_520_ci", "uca1400_ai_ci"]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(auth.passwords, "_hasher", CHEAP)
    monkeypatch.setattr(auth.passwords, "_UNKNOWN_USER_HASH", CHEAP.hash("no such user"))


@pytest.fixture
def database(servers):
    """MySQL settings for an empty throwaway database; dropped afterwards."""
    with environment({**servers, "MYSQL_DB": f"mp3test_login_{secrets.token_hex(4)}"}):
        settings = load(MySQLSettings)
    server = sa.create_engine(sa.engine.URL.create(
        "mysql+pymysql", username=settings.mysql_user, password=settings.mysql_password.get_secret_value() or None,
        host=settings.mysql_host, port=settings.mysql_port))
    with server.begin() as db:
        db.execute(sa.text(f"CREATE DATABASE `{settings.mysql_db}`"))
    yield settings
    with server.begin() as db:
        db.execute(sa.text(f"DROP DATABASE IF EXISTS `{settings.mysql_db}`"))
    server.dispose()


def make_old_schema(settings: MySQLSettings, collation: str):
    engine = engine_for(settings)
    with engine.begin() as db:
        for statement in OLD_SCHEMA.format(collation=collation).split(";"):
            db.execute(sa.text(statement))
        db.execute(sa.text("INSERT INTO users (email, password_hash) VALUES (:email, :hash)"),
                   {"email": ALICE, "hash": CHEAP.hash(ALICE_PASSWORD)})
    return engine


def rows_for(engine, email: str) -> list:
    with engine.connect() as db:
        return db.execute(sa.text("SELECT email FROM users WHERE email = :email"), {"email": email}).all()


def auth_client(settings: MySQLSettings, engine, **overrides):
    auth_settings = load(AuthSettings, **{**settings.model_dump(), "mysql_password": settings.mysql_password,
                                          "jwt_secret": secrets.token_urlsafe(32),
                                          "login_max_failures": MAX_FAILURES, "login_lockout_seconds": 300,
                                          **overrides})
    return create_app(auth_settings, UserStore(engine)).test_client()


def basic(email: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


def count_password_checks(monkeypatch) -> list:
    checks, lock = [], threading.Lock()
    real = auth.app.verify_password

    def counting(password_hash, password):
        with lock:
            checks.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth.app, "verify_password", counting)
    return checks


@pytest.mark.parametrize("collation", UCA_COLLATIONS)
def test_the_zero_width_bypass_is_real_under_a_uca_collation_and_closed(database, collation, monkeypatch):
    engine = make_old_schema(database, collation)
    # The attack as it was: the padded address finds Alice's row.
    assert [row.email for row in rows_for(engine, PADDED)] == [ALICE]

    # Auth refuses the padded address before the database: 30 guesses check no password and are
    # all 401 (never the 503 that let them go uncounted), and they do not lock Alice either.
    checks = count_password_checks(monkeypatch)
    client = auth_client(database, engine)
    schema.upgrade(engine)
    statuses = {client.post("/login", headers=basic(PADDED, f"guess-{n}")).status_code for n in range(30)}
    assert statuses == {401}
    assert checks == []
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 200

    # And the upgraded columns compare byte for byte: the database itself no longer matches it.
    assert rows_for(engine, PADDED) == []
    assert rows_for(engine, ALICE.upper()) == []
    with engine.connect() as db:
        collations = db.execute(sa.text(
            "SELECT TABLE_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'email'")).all()
    assert dict(collations) == {"users": "utf8mb4_bin", "login_failures": "utf8mb4_bin"}


def test_init_sql_makes_binary_email_columns(database):
    prepare(database)
    engine = engine_for(database)
    with engine.begin() as db:
        db.execute(sa.text("INSERT INTO users (email, password_hash) VALUES (:e, 'x')"), {"e": ALICE})
    assert rows_for(engine, PADDED) == []
    assert rows_for(engine, ALICE.upper()) == []
    # (utf8mb4_bin still ignores trailing spaces on both servers: auth strips them before asking.)
    assert [row.email for row in rows_for(engine, ALICE)] == [ALICE]


def test_the_schema_upgrade_is_idempotent_and_normalises_stored_addresses(database):
    engine = make_old_schema(database, "utf8mb4_unicode_ci")
    with engine.begin() as db:
        db.execute(sa.text("INSERT INTO users (email, password_hash) VALUES ('Bob@Example.COM', :h)"),
                   {"h": CHEAP.hash("bob-password-1")})
    schema.upgrade(engine)
    schema.upgrade(engine)  # a second start, or a second replica: nothing to do, nothing breaks
    store = UserStore(engine)
    bob = store.get("bob@example.com")
    assert bob is not None and bob.token_version == 0
    assert store.set_password("bob@example.com", CHEAP.hash("another-password"))
    assert store.get("bob@example.com").token_version == 1


def logins_at_once(app, passwords: list[str]) -> list[int]:
    """Alice's logins with these passwords, all released at the same moment; their statuses."""
    barrier = threading.Barrier(len(passwords))

    def login(password: str) -> int:
        client = app.test_client()
        barrier.wait()
        return client.post("/login", headers=basic(ALICE, password)).status_code

    with ThreadPoolExecutor(len(passwords)) as pool:
        return list(pool.map(login, passwords))


@pytest.fixture
def alice(database, monkeypatch):
    """Auth on a fresh database with Alice's account: (its app, the passwords it checked, the engine)."""
    prepare(database)
    engine = engine_for(database)
    UserStore(engine).add(ALICE, CHEAP.hash(ALICE_PASSWORD))
    checks = count_password_checks(monkeypatch)
    return auth_client(database, engine).application, checks, engine


def test_64_concurrent_wrong_logins_get_at_most_5_password_checks_then_the_account_is_locked(alice):
    app, checks, _ = alice
    statuses = logins_at_once(app, [f"wrong-{n}" for n in range(64)])
    assert len(checks) <= MAX_FAILURES
    assert sorted(set(statuses)) == [401, 429]
    assert statuses.count(401) == len(checks)
    right = app.test_client().post("/login", headers=basic(ALICE, ALICE_PASSWORD))
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0
    assert len(checks) <= MAX_FAILURES  # the right password was not checked either


def test_the_owners_own_logins_at_once_all_succeed_and_lock_nothing(alice):
    """Counting before checking must not turn right passwords in flight into a lockout."""
    app, checks, engine = alice
    statuses = logins_at_once(app, [ALICE_PASSWORD] * (3 * MAX_FAILURES))
    assert statuses == [200] * (3 * MAX_FAILURES)
    assert len(checks) == 3 * MAX_FAILURES
    assert not locked(engine, ALICE)


def test_a_write_error_while_counting_refuses_the_login_without_checking_the_password(database, monkeypatch):
    prepare(database)
    engine = engine_for(database)
    UserStore(engine).add(ALICE, CHEAP.hash(ALICE_PASSWORD))
    with engine.begin() as db:
        # Every write of an attempt now fails inside MariaDB, as "Data too long" did.
        db.execute(sa.text("ALTER TABLE login_failures MODIFY email VARCHAR(5) NOT NULL"))
    checks = count_password_checks(monkeypatch)
    client = auth_client(database, engine)
    for password in ["guess-1", "guess-2", ALICE_PASSWORD]:
        response = client.post("/login", headers=basic(ALICE, password))
        assert response.status_code == 401, "a refused write is a failed login, not an outage"
        assert "eyJ" not in response.get_data(as_text=True)
    assert checks == []
