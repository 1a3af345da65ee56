"""Failed authentication is slowed and visible: a per-client limit on refused tokens.

A client that fails authentication (no, an unknown, a revoked or an expired token; a wrong
token in the console's sign-in form) ``api_auth_failures_max`` times within
``api_auth_failures_window_s`` is answered 429 with ``Retry-After`` until that window ends,
without its token being looked at (no database read). Every failure counts in
``em_api_auth_failures_total{reason}``, every refused request in
``em_api_auth_throttled_total``, and the moment a client crosses the threshold one audit row
``auth.failures`` is written (one per client per window: the audit log cannot be flooded).

The client is the peer's IP address; when the peer is one of ``api_trusted_proxies`` (a reverse
proxy), the nearest address in ``X-Forwarded-For`` that is not itself a trusted proxy. Memory is
bounded: at most ``api_auth_throttle_max_clients`` clients are tracked, the least recently
failing forgotten first.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from em_service.store import audit

FAILURES = Counter(
    "em_api_auth_failures_total",
    "Refused authentications (missing, unknown, revoked or expired token)",
    ["reason"],
)
THROTTLED = Counter(
    "em_api_auth_throttled_total",
    "Requests answered 429 because their client failed authentication too often",
)


@dataclass
class _Window:
    start: float
    count: int = 0
    reasons: Tally = field(default_factory=Tally)


class AuthThrottle:
    """Per-client fixed-window failure counts, at most ``max_clients`` of them (LRU)."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self.clock = clock
        self._clients: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait (it is throttled), or None."""
        now = self.clock()
        with self._lock:
            window = self._clients.get(client)
            if window is None or now - window.start >= self.window_s:
                return None
            if window.count < self.max_failures:
                return None
            return max(1, math.ceil(window.start + self.window_s - now))

    def failed(self, client: str, reason: str) -> _Window | None:
        """Count one failure of ``client``; return its window when this one reached the limit."""
        now = self.clock()
        with self._lock:
            window = self._clients.pop(client, None)
            if window is None or now - window.start >= self.window_s:
                window = _Window(start=now)
            window.count += 1
            window.reasons[reason] += 1
            self._clients[client] = window  # most recent last
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            return window if window.count == self.max_failures else None

    def __len__(self) -> int:
        return len(self._clients)


def throttle(app: Any) -> AuthThrottle:
    """Return the app's throttle (created from its settings on first use)."""
    found = getattr(app.state, "auth_throttle", None)
    if found is None:
        s = app.state.settings
        found = app.state.auth_throttle = AuthThrottle(
            s.api_auth_failures_max, s.api_auth_failures_window_s, s.api_auth_throttle_max_clients
        )
    return found


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: str, proxies: Iterable[str]) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def client_of(scope: dict, settings: Any) -> str:
    """Return the client's address: the peer, or behind a trusted proxy the address it saw."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    proxies = settings.api_trusted_proxies
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = ",".join(
        v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"
    )
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, proxies):
            return hop if _ip(hop) is not None else peer
    return peer


def blocked(app: Any, client: str) -> int | None:
    """Seconds ``client`` must wait before authenticating again (counted), or None."""
    wait = throttle(app).retry_after(client)
    if wait is not None:
        THROTTLED.inc()
    return wait


def failed(app: Any, client: str, reason: str, via: str) -> None:
    """Record one failure (metric); audit the client once when it reaches the limit.

    Blocking (it may write the audit row): call it from a thread in async code."""
    FAILURES.labels(reason).inc()
    crossed = throttle(app).failed(client, reason)
    if crossed is None:
        return
    settings = app.state.settings
    with app.state.store.write() as session:
        audit.append(
            session,
            actor=client[:100],
            role="anonymous",
            action="auth.failures",
            detail={
                "client": client,
                "failures": crossed.count,
                "window_s": settings.api_auth_failures_window_s,
                "reasons": dict(sorted(crossed.reasons.items())),
                "via": via,
            },
        )


def too_many(wait: int) -> tuple[str, dict[str, str]]:
    """The 429's message and headers."""
    return (
        f"too many failed authentications from this client; retry in {wait} s",
        {"Retry-After": str(wait)},
    )
