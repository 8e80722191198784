"""Calls to the auth service, each with a timeout: auth down means 503, never a hang.

An accepted token's claims are kept for `cache_seconds` (TOKEN_CACHE_SECONDS, at most a minute): a
client polling its job costs no round trip to auth each time. Auth also checks that the token's user
still exists with the same password, so a deletion or a password change takes effect here within
that time.
"""

import threading
import time

import requests
from cachetools import TTLCache

VALIDATION_CACHE_SIZE = 10_000


class AuthUnavailable(Exception):
    pass


class AuthClient:
    def __init__(self, base_url: str, timeout: float, cache_seconds: float = 60, clock=time.monotonic):
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._http = requests.Session()
        self._accepted: TTLCache = TTLCache(VALIDATION_CACHE_SIZE, cache_seconds, timer=clock)
        self._accepted_lock = threading.Lock()

    def login(self, authorization: str) -> requests.Response:
        """Forward the caller's Basic credentials; the answer is auth's, status and body."""
        return self._call("/login", authorization)

    def validate(self, token: str) -> dict | None:
        """The token's claims, or None when auth refuses it."""
        with self._accepted_lock:
            claims = self._accepted.get(token)
        if claims is not None and claims["exp"] > time.time():
            return claims
        response = self._call("/validate", f"Bearer {token}")
        if response.status_code != 200:
            return None
        claims = response.json()
        with self._accepted_lock:
            self._accepted[token] = claims
        return claims

    def ping(self) -> None:
        try:
            self._http.get(f"{self._base}/healthz", timeout=self._timeout).raise_for_status()
        except requests.RequestException as error:
            raise AuthUnavailable(repr(error)) from error

    def _call(self, path: str, authorization: str) -> requests.Response:
        try:
            response = self._http.post(f"{self._base}{path}", headers={"Authorization": authorization},
                                       timeout=self._timeout)
        except requests.RequestException as error:
            raise AuthUnavailable(repr(error)) from error
        if response.status_code >= 500:
            raise AuthUnavailable(f"auth answered {response.status_code}")
        return response
