"""JWTs: HS256 only; subject, admin flag, issue time, expiry, issuer, audience, id, and the user's id
and token version all required.

`uid` and `ver` tie a token to one account as it is now: auth's /validate refuses it once that user
is deleted (a re-created account has another id) or their password changed (the version grew).
"""

import uuid
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "mp3converter-auth"
AUDIENCE = "mp3converter"
REQUIRED_CLAIMS = ["sub", "admin", "iat", "exp", "iss", "aud", "jti", "uid", "ver"]


def issue(user, secret: str, ttl_seconds: int) -> str:
    """A token for an auth.users.User."""
    now = datetime.now(UTC)
    claims = {"sub": user.email, "admin": user.is_admin, "iat": now, "exp": now + timedelta(seconds=ttl_seconds),
              "iss": ISSUER, "aud": AUDIENCE, "jti": uuid.uuid4().hex, "uid": user.id, "ver": user.token_version}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(token: str, secret: str) -> dict | None:
    """The claims of a valid token, or None for anything expired, forged, malformed, unsigned, or
    issued by or for someone else."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=AUDIENCE,
                            options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError:
        return None
    if not (isinstance(claims["sub"], str) and isinstance(claims["admin"], bool) and isinstance(claims["jti"], str)
            and claims["jti"] and _whole(claims["uid"]) and _whole(claims["ver"])):
        return None
    return claims


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

