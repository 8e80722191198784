"""The auth service alone: its HTTP API against a SQLite user store, as the gateway and users see it."""

import base64
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

import auth.passwords
import auth.users
from auth import tokens
from auth.app import create_app, ensure_admin
from auth.passwords import hash_password
from auth.users import UserStore, users
from common.settings import AuthSettings, load
from tests.unit.envfile import assert_json_error

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = "unit-test-secret-" + "0123456789abcdef" * 3
TTL = 600
MAX_FAILURES = 3
LOCKOUT = 120
ALICE, ALICE_PASSWORD = "alice@example.com", "alice-password-1"
BOB, BOB_PASSWORD = "bob@example.com", "bob-password-22"
USER_IDS = {ALICE: 1, BOB: 2}  # the store fixture adds them in this order to an empty table
ADMIN, ADMIN_PASSWORD = "admin@example.com", "admin-password-333"
# The service hashes with argon2's defaults, ~0.3 s a call on a small machine; the tests hash with the
# cheapest argon2id parameters instead (verifying reads the parameters from the hash itself).
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def basic(email: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_for(email: str = ALICE, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": email, "admin": False, "iat": now, "exp": now + TTL, "iss": tokens.ISSUER,
              "aud": tokens.AUDIENCE, "jti": "0123456789abcdef", "uid": USER_IDS.get(email, 99), "ver": 0}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def decode(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], audience=tokens.AUDIENCE, issuer=tokens.ISSUER)


def make_token(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.fixture(scope="module")
def password_hashes() -> dict[str, str]:
    return {ALICE: CHEAP.hash(ALICE_PASSWORD), BOB: CHEAP.hash(BOB_PASSWORD)}


SERVICE_HASHER = auth.passwords._hasher


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """The same code paths with the cheap parameters: new hashes, and the dummy hash unknown e-mails meet."""
    monkeypatch.setattr(auth.passwords, "_hasher", CHEAP)
    monkeypatch.setattr(auth.passwords, "_UNKNOWN_USER_HASH", CHEAP.hash("no such user"))


@pytest.fixture
def settings(clean_env) -> AuthSettings:
    return load(AuthSettings, mysql_host="127.0.0.1", mysql_user="converter", mysql_db="converter",
                jwt_secret=SECRET, jwt_ttl_seconds=TTL, admin_email=ADMIN, admin_password=ADMIN_PASSWORD,
                login_max_failures=MAX_FAILURES, login_lockout_seconds=LOCKOUT)


@pytest.fixture
def engine():
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    auth.users.metadata.create_all(engine)
    yield engine
    engine.dispose()


def locked(engine, email: str) -> bool:
    """Whether the account's row in login_failures holds a lock that has not expired."""
    with engine.connect() as db:
        until = db.execute(sa.select(auth.users.login_failures.c.locked_until)
                           .where(auth.users.login_failures.c.email == email)).scalar()
    return until is not None and until > datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def store(engine, password_hashes) -> UserStore:
    store = UserStore(engine)
    for email, password_hash in password_hashes.items():
        store.add(email, password_hash)
    return store


@pytest.fixture
def client(settings, store):
    return create_app(settings, store).test_client()


def user_rows(engine) -> list:
    with engine.connect() as db:
        return db.execute(sa.select(users).order_by(users.c.id)).all()


# ---------------------------------------------------------------- login


def test_login_answers_a_jwt_as_text_with_the_documented_claims(client):
    before = int(time.time())
    response = client.post("/login", headers=basic(ALICE, ALICE_PASSWORD))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    token = response.get_data(as_text=True)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = decode(token)
    assert set(claims) == {"sub", "admin", "iat", "exp", "iss", "aud", "jti", "uid", "ver"}
    assert (claims["iss"], claims["aud"], claims["uid"], claims["ver"]) == (tokens.ISSUER, tokens.AUDIENCE, 1, 0)
    assert len(claims["jti"]) == 32
    assert claims["sub"] == ALICE
    assert claims["admin"] is False
    assert before - 1 <= claims["iat"] <= time.time() + 1
    assert claims["exp"] - claims["iat"] == TTL


@pytest.mark.parametrize("headers", [
    pytest.param(basic(ALICE, "wrong-password"), id="wrong-password"),
    pytest.param(basic(ALICE, ""), id="empty-password"),
    pytest.param(basic("nobody@example.com", ALICE_PASSWORD), id="unknown-user"),
    pytest.param(basic(ALICE.upper() + "x", ALICE_PASSWORD), id="other-email"),
    pytest.param(basic("", ALICE_PASSWORD), id="empty-email"),
    pytest.param({}, id="no-credentials"),
    pytest.param({"Authorization": "Basic"}, id="basic-without-credentials"),
    pytest.param({"Authorization": "Basic !!!not-base64"}, id="basic-garbage"),
    pytest.param(bearer("whatever"), id="bearer-instead-of-basic"),
])
def test_login_refuses_bad_credentials_with_401_json(client, headers):
    response = client.post("/login", headers=headers)
    assert_json_error(response, 401)
    assert "eyJ" not in response.get_data(as_text=True)  # no token of any kind


@pytest.mark.parametrize("email", ["' OR '1'='1", "admin@example.com'--", "alice@example.com' OR 1=1 --",
                                   "'; DROP TABLE users; --"])
def test_sql_injection_looking_emails_are_just_wrong_credentials(client, engine, email):
    before = user_rows(engine)
    response = client.post("/login", headers=basic(email, "' OR '1'='1"))
    assert_json_error(response, 401)
    assert user_rows(engine) == before


def test_login_for_an_admin_says_admin_in_the_token(settings, store, client):
    ensure_admin(store, settings)
    response = client.post("/login", headers=basic(ADMIN, ADMIN_PASSWORD))
    assert response.status_code == 200
    claims = decode(response.get_data(as_text=True))
    assert claims["sub"] == ADMIN
    assert claims["admin"] is True


# ---------------------------------------------------------------- validate


def test_validate_answers_the_claims_of_a_token_from_login(client):
    token = client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).get_data(as_text=True)
    response = client.post("/validate", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == decode(token)


def test_validate_accepts_a_hand_made_token_signed_with_the_secret(client):
    claims = claims_for(BOB, admin=True)
    response = client.post("/validate", headers=bearer(make_token(claims)))
    assert response.status_code == 200
    assert response.get_json() == claims


def _tampered() -> str:
    header, _payload, signature = make_token(claims_for(ALICE)).split(".")
    return ".".join([header, b64url(claims_for(ADMIN, admin=True)), signature])


def _unsigned() -> str:
    return f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims_for(ADMIN, admin=True))}."


def _unsigned_with_old_signature() -> str:
    _header, payload, signature = make_token(claims_for(ALICE)).split(".")
    return f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


BAD_TOKENS = {
    "expired": lambda: make_token(claims_for(iat=int(time.time()) - 2 * TTL, exp=int(time.time()) - 10)),
    "tampered-payload": _tampered,
    "wrong-key": lambda: make_token(claims_for(), key="another-secret-" + "0123456789abcdef" * 3),
    "alg-none": _unsigned,
    "alg-none-with-signature": _unsigned_with_old_signature,
    "other-algorithm-same-secret": lambda: make_token(claims_for(), algorithm="HS512"),
    "garbage": lambda: "not-a-token",
    "three-garbage-parts": lambda: "aaa.bbb.ccc",
    "no-sub": lambda: make_token(claims_for(sub=None)),
    "no-admin": lambda: make_token(claims_for(admin=None)),
    "no-iat": lambda: make_token(claims_for(iat=None)),
    "no-exp": lambda: make_token(claims_for(exp=None)),
    "sub-not-a-string": lambda: make_token(claims_for(sub=42)),
    "admin-not-a-bool": lambda: make_token(claims_for(admin="yes")),
    "no-iss": lambda: make_token(claims_for(iss=None)),
    "other-issuer": lambda: make_token(claims_for(iss="someone-else")),
    "no-aud": lambda: make_token(claims_for(aud=None)),
    "other-audience": lambda: make_token(claims_for(aud="another-service")),
    "no-jti": lambda: make_token(claims_for(jti=None)),
    "empty-jti": lambda: make_token(claims_for(jti="")),
    "no-uid": lambda: make_token(claims_for(uid=None)),
    "no-ver": lambda: make_token(claims_for(ver=None)),
    "ver-not-a-number": lambda: make_token(claims_for(ver="0")),
    "another-users-id": lambda: make_token(claims_for(ALICE, uid=USER_IDS[BOB])),
    "an-older-token-version": lambda: make_token(claims_for(ver=1)),
    "no-such-user": lambda: make_token(claims_for("nobody@example.com")),
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_validate_refuses_bad_tokens_with_401_json(client, kind):
    assert_json_error(client.post("/validate", headers=bearer(BAD_TOKENS[kind]())), 401)


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer"}, id="bearer-without-token"),
    pytest.param({"Authorization": "Bearer    "}, id="bearer-blank"),
    pytest.param(basic(ALICE, ALICE_PASSWORD), id="basic-instead-of-bearer"),
])
def test_validate_without_a_bearer_token_is_401_json(client, headers):
    assert_json_error(client.post("/validate", headers=headers), 401)


def test_validate_with_a_token_in_another_scheme_is_401(client):
    token = make_token(claims_for())
    assert_json_error(client.post("/validate", headers={"Authorization": f"Token {token}"}), 401)


# ---------------------------------------------------------------- stored passwords and the first admin


def test_passwords_are_stored_as_argon2_hashes_never_in_plain_text(settings, engine, store):
    ensure_admin(store, settings)
    (row,) = [row for row in user_rows(engine) if row.email == ADMIN]
    assert row.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in row.password_hash
    assert PasswordHasher().verify(row.password_hash, ADMIN_PASSWORD)


def test_the_service_hashes_with_argon2id_at_least_as_strong_as_owasp_asks():
    # Checked on its parameters, not by hashing: argon2 at full strength is slow on purpose.
    assert SERVICE_HASHER.type is Type.ID
    assert SERVICE_HASHER.memory_cost >= 19 * 1024  # KiB
    assert SERVICE_HASHER.time_cost >= 2
    assert SERVICE_HASHER.salt_len >= 16


def test_the_same_password_hashes_differently_each_time():
    assert hash_password(ALICE_PASSWORD) != hash_password(ALICE_PASSWORD)


def test_ensure_admin_creates_the_admin_once(settings, engine, store):
    ensure_admin(store, settings)
    after_first = user_rows(engine)
    admins = [row for row in after_first if row.email == ADMIN]
    assert len(admins) == 1
    assert admins[0].is_admin is True
    ensure_admin(store, settings)
    assert user_rows(engine) == after_first


def test_ensure_admin_without_a_password_creates_nobody(clean_env, engine, store):
    settings = load(AuthSettings, mysql_host="h", mysql_user="u", mysql_db="d", jwt_secret=SECRET,
                    admin_email=ADMIN, admin_password="")
    before = user_rows(engine)
    ensure_admin(store, settings)
    assert user_rows(engine) == before


# ---------------------------------------------------------------- throttling


def fail_logins(client, email: str, times: int) -> None:
    for _ in range(times):
        assert client.post("/login", headers=basic(email, "wrong-password")).status_code == 401


def test_too_many_failures_throttle_even_the_right_password(client):
    fail_logins(client, ALICE, MAX_FAILURES)
    response = client.post("/login", headers=basic(ALICE, ALICE_PASSWORD))
    assert_json_error(response, 429)
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= LOCKOUT


def test_one_failure_fewer_than_the_limit_does_not_throttle(client):
    fail_logins(client, ALICE, MAX_FAILURES - 1)
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 200


def test_failures_for_one_account_do_not_throttle_another(client):
    fail_logins(client, ALICE, MAX_FAILURES)
    assert client.post("/login", headers=basic(BOB, BOB_PASSWORD)).status_code == 200
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 429


def test_a_successful_login_clears_the_failure_count(client):
    fail_logins(client, ALICE, MAX_FAILURES - 1)
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 200
    fail_logins(client, ALICE, MAX_FAILURES - 1)
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 200


def test_the_throttle_ends_after_the_lockout(client, monkeypatch):
    fail_logins(client, ALICE, MAX_FAILURES)
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 429
    real_now = auth.users._utcnow
    monkeypatch.setattr(auth.users, "_utcnow", lambda: real_now() + timedelta(seconds=LOCKOUT + 1))
    assert client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)).status_code == 200


# ---------------------------------------------------------------- health and a database that is away


class BrokenStore(UserStore):
    """A store whose MySQL is gone: every query raises what PyMySQL raises then."""

    def __init__(self):
        super().__init__(engine=None)

    def _down(self, *_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("MySQL is away (test)"))

    get = add = begin_attempt = clear_failures = ping = _down


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["ready"] is True


def test_readyz_is_503_when_the_database_is_away_and_only_the_log_says_why(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="auth.app"):
        response = create_app(settings, BrokenStore()).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "checks": {"mysql": "down"}}
    [record] = [r for r in caplog.records if r.getMessage() == "dependency not ready"]
    assert "MySQL is away (test)" in record.error


def test_login_while_the_database_is_away_is_503_json_not_500(settings):
    client = create_app(settings, BrokenStore()).test_client()
    assert_json_error(client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)), 503)


def test_validate_while_the_database_is_away_is_503_not_a_yes(settings):
    # It must look the user up: the gateway answers 503 too, and keeps only what it had validated.
    client = create_app(settings, BrokenStore()).test_client()
    assert_json_error(client.post("/validate", headers=bearer(make_token(claims_for()))), 503)


def test_unknown_route_is_404_json(client):
    assert_json_error(client.get("/nope"), 404)


def test_wrong_method_is_405_json(client):
    response = client.get("/login")
    assert_json_error(response, 405)
    assert "POST" in response.headers.get("Allow", "")


# ---------------------------------------------------------------- addresses: one spelling, checked first

ZERO_WIDTH_SPACE = "\u200b"


class UntouchableStore(UserStore):
    """A store that fails the test if the request reaches the database at all."""

    def __init__(self):
        super().__init__(engine=None)

    def _touched(self, *_args, **_kwargs):
        raise AssertionError("the database was queried")

    get = add = begin_attempt = clear_failures = set_password = delete = ping = _touched


@pytest.mark.parametrize("email", [
    pytest.param(ALICE + ZERO_WIDTH_SPACE * 250, id="250-zero-width-spaces"),
    pytest.param(ALICE + ZERO_WIDTH_SPACE, id="one-zero-width-space"),
    pytest.param("ali\u200dce@example.com", id="zero-width-joiner"),
    pytest.param("alice@exam\u00adple.com", id="soft-hyphen"),
    pytest.param("\ufeffalice@example.com", id="byte-order-mark"),
    pytest.param("alice@example.com\u202e", id="bidi-override"),
    pytest.param("alice\u034f@example.com", id="combining-grapheme-joiner"),
    pytest.param("alice@example.com\ufe0f", id="variation-selector"),
    pytest.param("alice@example.com\x00", id="nul"),
    pytest.param("alice @example.com", id="inner-space"),
    pytest.param("alice\u2028@example.com", id="line-separator"),
    pytest.param("a" * 243 + "@example.com", id="255-characters"),
    pytest.param("no-at-sign.example.com", id="no-at-sign"),
])
def test_an_address_no_account_can_have_is_401_before_the_database_is_touched(settings, email):
    client = create_app(settings, UntouchableStore()).test_client()
    response = client.post("/login", headers=basic(email, ALICE_PASSWORD))
    assert assert_json_error(response, 401)["error"] == "invalid_credentials"


FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45@example.com"


@pytest.mark.parametrize("spelling", [" ALICE@Example.COM ", "alice@example.com\t", FULLWIDTH_ALICE])
def test_one_address_however_it_is_spelled_is_one_account(client, spelling):
    response = client.post("/login", headers=basic(spelling, ALICE_PASSWORD))
    assert response.status_code == 200
    assert decode(response.get_data(as_text=True))["sub"] == ALICE


def test_other_spellings_count_against_the_one_account(client):
    for spelling in (ALICE.upper(), f" {ALICE}", "Alice@Example.com")[:MAX_FAILURES]:
        assert client.post("/login", headers=basic(spelling, "wrong-password")).status_code == 401
    assert_json_error(client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)), 429)


def test_a_254_character_address_is_an_ordinary_unknown_user(client):
    email = "a" * 242 + "@example.com"
    assert len(email) == 254
    assert assert_json_error(client.post("/login", headers=basic(email, "x")), 401)["error"] == "invalid_credentials"


def test_an_invalid_admin_email_stops_auth_with_a_message_naming_it(clean_env, store):
    settings = load(AuthSettings, mysql_host="h", mysql_user="u", mysql_db="d", jwt_secret=SECRET,
                    admin_email="admin\u200b@example.com", admin_password=ADMIN_PASSWORD)
    with pytest.raises(SystemExit, match="ADMIN_EMAIL"):
        ensure_admin(store, settings)


# ---------------------------------------------------------------- a password is checked only once counted


class UncountableStore(UserStore):
    """The attempt cannot be written (what "Data too long" did with the old schema)."""

    def begin_attempt(self, *_args, **_kwargs):
        raise sa.exc.DataError("UPDATE login_failures", {}, Exception("Data too long for column 'email'"))


def test_a_write_error_counting_the_attempt_refuses_the_login_unchecked(settings, engine, password_hashes, monkeypatch):
    store = UncountableStore(engine)
    store.add(ALICE, password_hashes[ALICE])
    checked = []
    monkeypatch.setattr("auth.app.verify_password", lambda *args: checked.append(args) or True)
    client = create_app(settings, store).test_client()
    for password in ("wrong-password", ALICE_PASSWORD):
        assert_json_error(client.post("/login", headers=basic(ALICE, password)), 401)
    assert checked == []  # no guess was ever checked: none could go uncounted


def test_the_attempt_is_counted_before_the_password_is_checked(settings, store, engine, monkeypatch):
    seen = []

    def verify(password_hash, password):
        seen.append(locked(engine, ALICE))  # the MAX_FAILURES-th attempt is already counted: locked
        return False

    monkeypatch.setattr("auth.app.verify_password", verify)
    client = create_app(settings, store).test_client()
    fail_logins(client, ALICE, MAX_FAILURES)
    assert seen == [False] * (MAX_FAILURES - 1) + [True]
    assert_json_error(client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)), 429)
    assert len(seen) == MAX_FAILURES  # the locked attempt was not checked


# ---------------------------------------------------------------- tokens die with their user or password


def login_token(client, email=ALICE, password=ALICE_PASSWORD) -> str:
    response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_password_change_revokes_the_tokens_issued_before(client, store):
    old = login_token(client)
    assert store.set_password(ALICE, CHEAP.hash("a-new-password"))
    assert_json_error(client.post("/validate", headers=bearer(old)), 401)
    assert_json_error(client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)), 401)
    new = login_token(client, password="a-new-password")
    assert client.post("/validate", headers=bearer(new)).status_code == 200


def test_a_deleted_users_token_is_refused(client, store):
    token = login_token(client)
    assert store.delete(ALICE)
    assert_json_error(client.post("/validate", headers=bearer(token)), 401)
    assert_json_error(client.post("/login", headers=basic(ALICE, ALICE_PASSWORD)), 401)


def test_an_account_made_again_with_the_same_address_does_not_revive_old_tokens(client, store):
    old = login_token(client)
    assert store.delete(ALICE)
    store.add(ALICE, CHEAP.hash(ALICE_PASSWORD))  # the same address and password, token version 0 again
    assert_json_error(client.post("/validate", headers=bearer(old)), 401)
    assert client.post("/validate", headers=bearer(login_token(client))).status_code == 200


def test_a_token_of_another_user_keeps_working(client, store):
    bobs = login_token(client, BOB, BOB_PASSWORD)
    store.delete(ALICE)
    assert client.post("/validate", headers=bearer(bobs)).status_code == 200
