"""Security headers on every response (pure ASGI, outside the whole middleware stack: 401/413/429
from the guards and the 500 of an uncaught exception too; see ``main._Api``).

Every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY`` and a Content-Security-Policy with ``frame-ancestors 'none'``:

- console pages: the console's strict policy (``'self'`` only, plus the map tile host);
- console static assets: the same policy, and their own caching (versioned vendor files);
- ``/docs`` and ``/redoc`` (Swagger UI / ReDoc load their code from a CDN): ``frame-ancestors``
  only (hide them in production with ``EM_API_DOCS_ENABLED=false``);
- everything else (the JSON API, health, metrics): ``default-src 'none'``.

Everything but the static assets gets ``Cache-Control: no-store``: locations, alerts and
tokens must never sit in a browser or proxy cache.
"""

from __future__ import annotations

from typing import Any

STATIC = "/console/static/"
CONSOLE = "/console"
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = "frame-ancestors 'none'"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: Any, console_policy: str) -> None:
        self.app = app
        console = (b"content-security-policy", console_policy.encode())
        self._static = [*_COMMON, console]
        self._console = [*_COMMON, console, _NO_STORE]
        self._docs = [*_COMMON, (b"content-security-policy", DOCS_POLICY.encode()), _NO_STORE]
        self._api = [*_COMMON, (b"content-security-policy", API_POLICY.encode()), _NO_STORE]

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        """The headers a response to ``path`` gets."""
        if path.startswith(STATIC):
            return self._static
        if path == CONSOLE or path.startswith(CONSOLE + "/"):
            return self._console
        if path in DOCS_PATHS:
            return self._docs
        return self._api

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope["path"])
        names = {name for name, _ in extra}  # ours replace the app's (static: its caching stays)

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, _send)
