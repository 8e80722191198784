"""How many logins one client may try: LOGIN_ATTEMPTS_PER_CLIENT per client address, over a moving window.

Auth locks an account after LOGIN_MAX_FAILURES wrong passwords, which bounds guessing but lets anyone
lock anyone out. This limit makes that cost something: one address can lock at most
LOGIN_ATTEMPTS_PER_CLIENT / LOGIN_MAX_FAILURES accounts per window. Every attempt counts, a right
password too, so that the count is taken before auth is asked and a burst of concurrent requests
cannot slip past it. The trade-off (README, Configuration): clients behind one address (an office's
NAT) share one allowance; an attacker with many addresses is bounded by the accounts' own locks only.

The counts live in each gateway process's memory: with N processes (HTTP_WORKERS, times replicas) a
client that reaches all of them gets up to N allowances. They are not shared, so that a login never
waits on another backend, and a restart forgets them.

The client is the connection's address, unless it is one of TRUSTED_PROXIES: then it is the nearest
X-Forwarded-For entry that is not a trusted proxy (entries further left are the client's own claims).
"""

import ipaddress
import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class LoginLimit:
    def __init__(self, rate: str, trusted_proxies: str):
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._trusted = [ipaddress.ip_network(item.strip(), strict=False)
                         for item in trusted_proxies.split(",") if item.strip()]

    def client(self, remote_addr: str | None, forwarded_for: str) -> str:
        """The address a request comes from, as far as the trusted proxies vouch for it."""
        client = remote_addr or "unknown"
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        while hops and self._is_trusted(client):
            hop = hops.pop()
            if _address(hop) is None:
                break  # not written by a proxy we trust: the last trusted hop saw this client
            client = hop
        return client

    def attempt(self, client: str) -> int:
        """Count one login attempt of the client: 0 when it may go ahead, else seconds to wait."""
        if self._limiter.hit(self._rate, client):
            return 0
        reset_at = self._limiter.get_window_stats(self._rate, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def _is_trusted(self, address: str) -> bool:
        ip = _address(address)
        return ip is not None and any(ip in network for network in self._trusted)


def _address(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
