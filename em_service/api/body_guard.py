"""Refuse request bodies before anything parses them: size limits and authentication first.

An ASGI layer outside every route. For a request that may carry a body (POST, PUT, PATCH,
DELETE):

1. a declared ``Content-Length`` above the route's limit is answered 413 at once;
2. under ``/api/`` the bearer token is checked (one indexed lookup) before a byte of the body is
   read (a client that failed too often is answered 429 first, see ``auth_guard``): no or an
   unknown, revoked or expired token is answered 401 and the body is never read (the connection is
   closed by the server instead of draining it);
3. a body without a declared length (chunked) is counted as it arrives and answered 413 the
   moment it passes the limit; the rest is never read.

Limits: ``PUT …/conditions`` ``api_conditions_max_body_bytes`` (1 MiB), every other route
``api_max_body_bytes`` (64 KiB). Roles are still checked by the routes (403).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from em_service.api import auth_guard
from em_service.clock import wall_now
from em_service.store import tokens

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CONDITIONS = re.compile(r"^/api/v1/offenders/[^/]+/conditions$")
#: Key in the request state under which the already authenticated caller is kept.
STATE_KEY = "body_guard_caller"


class BodyTooLarge(Exception):
    """Raised inside the app when a streamed body passes its limit (the 413 is already sent)."""


def _limit(settings: Any, path: str) -> int:
    if _CONDITIONS.match(path):
        return settings.api_conditions_max_body_bytes
    return settings.api_max_body_bytes


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """ASGI middleware: 413 for bodies over the route's limit, 401 before reading any body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings, path = state.settings, scope["path"]
        limit = _limit(settings, path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, 413, f"request body larger than {limit} bytes")
            return
        if path.startswith("/api/"):
            app = scope["app"]
            client = auth_guard.client_of(scope, settings)
            wait = auth_guard.blocked(app, client)
            if wait is not None:
                detail, extra = auth_guard.too_many(wait)
                await _answer(send, 429, detail, [(b"retry-after", extra["Retry-After"].encode())])
                return
            token = _bearer(scope)
            found: tokens.Caller | tokens.Refusal = "missing"  # type: ignore[assignment]
            if token is not None:
                now = wall_now(settings)
                found = await anyio.to_thread.run_sync(_check, state.store, token, now)
            if not isinstance(found, tokens.Caller):
                await anyio.to_thread.run_sync(auth_guard.failed, app, client, found, "api")
                detail = (
                    "a bearer token is required"
                    if token is None
                    else "token expired"
                    if found == "expired"
                    else "unknown or revoked token"
                )
                await _answer(send, 401, detail, [(b"www-authenticate", b"Bearer")])
                return
            caller = found
            scope.setdefault("state", {})[STATE_KEY] = caller
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await _answer(send, 413, f"request body larger than {limit} bytes")
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the app answers to the aborted body is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not refused:
                raise


def _check(store: Any, token: str, now: datetime) -> tokens.Caller | tokens.Refusal:
    with store.read() as session:
        return tokens.check(session, token, now)
