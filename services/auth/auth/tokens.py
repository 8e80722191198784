"""JWTs: HS256 only, with subject, admin flag, issue time and expiry all required."""

from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "admin", "iat", "exp"]


def issue(email: str, admin: bool, secret: str, ttl_seconds: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": email, "admin": admin, "iat": now, "exp": now + timedelta(seconds=ttl_seconds)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(token: str, secret: str) -> dict | None:
    """The claims of a valid token, or None for anything expired, forged, malformed or unsigned."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError:
        return None
    if not isinstance(claims["sub"], str) or not isinstance(claims["admin"], bool):
        return None
    return claims
