"""Password hashing with argon2id; verification takes the same time whether the user exists or not."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's recommended argon2id floor (19 MiB, 2 passes, 1 lane): about six times cheaper than the
# library default on two cores, so that a burst of logins stays within the gateway's auth timeout.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so that timing does not tell which e-mails exist.
_UNKNOWN_USER_HASH = _hasher.hash("no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _UNKNOWN_USER_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
