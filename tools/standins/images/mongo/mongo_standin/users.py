"""Users and SCRAM-SHA-256, as mongod checks them: the password is verified for real (the client proves
it knows it, and checks the server's signature in turn). Roles are stored and reported but not enforced:
any authenticated user may run any command."""

import base64
import hashlib
import hmac
import os

from pymongo.saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 15000


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def credentials(password: str) -> dict:
    """What is stored for a password: never the password itself."""
    salt = os.urandom(28)
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, ITERATIONS)
    return {
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
        "stored_key": base64.b64encode(hashlib.sha256(_hmac(salted, b"Client Key")).digest()).decode(),
        "server_key": base64.b64encode(_hmac(salted, b"Server Key")).decode(),
    }


class AuthError(Exception):
    pass


def _fields(message: bytes) -> dict:
    return dict(part.split("=", 1) for part in message.decode().split(",") if "=" in part)


class Users:
    """The users of every database, keyed by (database, name)."""

    def __init__(self, records: list | None = None):
        self.records = {(r["db"], r["user"]): r for r in records or []}

    def create(self, database: str, name: str, password: str, roles: list) -> None:
        if (database, name) in self.records:
            raise AuthError(f"User \"{name}@{database}\" already exists")
        self.records[(database, name)] = {"db": database, "user": name, "roles": roles, **credentials(password)}

    def drop(self, database: str, name: str) -> bool:
        return self.records.pop((database, name), None) is not None

    def info(self, database: str, name: str | None = None) -> list:
        return [
            {"_id": f"{db}.{user}", "user": user, "db": db, "roles": r["roles"], "mechanisms": [MECHANISM]}
            for (db, user), r in self.records.items()
            if db == database and name in (None, user)
        ]

    def exists(self, database: str, name: str) -> bool:
        return (database, name) in self.records

    @property
    def any(self) -> bool:
        return bool(self.records)

    def start(self, database: str, mechanism: str, payload: bytes) -> "Conversation":
        if mechanism != MECHANISM:
            raise AuthError(f"Received authentication for mechanism {mechanism} which is not enabled")
        return Conversation(self, database, payload)


class Conversation:
    """One SCRAM exchange: client-first (saslStart), then client-final (saslContinue)."""

    def __init__(self, users: Users, database: str, client_first: bytes):
        bare = client_first.split(b",", 2)[2]  # drop the gs2 header "n,,"
        fields = _fields(bare)
        self.user = fields["n"].replace("=2C", ",").replace("=3D", "=")
        self.database = database
        self.record = users.records.get((database, self.user))
        nonce = fields["r"] + base64.b64encode(os.urandom(24)).decode()
        salt, iterations = (
            (self.record["salt"], self.record["iterations"]) if self.record
            else (base64.b64encode(os.urandom(28)).decode(), ITERATIONS)
        )  # fmt: skip
        self.server_first = f"r={nonce},s={salt},i={iterations}".encode()
        self.client_first_bare = bare
        self.nonce = nonce

    def finish(self, client_final: bytes) -> bytes:
        """The server's signature once the client's proof is right; AuthError otherwise."""
        fields = _fields(client_final)
        without_proof = client_final.rsplit(b",p=", 1)[0]
        if fields.get("r") != self.nonce or self.record is None:
            raise AuthError("Authentication failed.")
        message = b",".join((self.client_first_bare, self.server_first, without_proof))
        stored_key = base64.b64decode(self.record["stored_key"])
        signature = _hmac(stored_key, message)
        proof = base64.b64decode(fields["p"])
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key):
            raise AuthError("Authentication failed.")
        server_signature = _hmac(base64.b64decode(self.record["server_key"]), message)
        return b"v=" + base64.b64encode(server_signature)
