"""Server-side console sessions: a random cookie names a session kept in the API process.

Sign-in is two steps kept apart on purpose: an *identity step* proves who the officer is and
yields an :class:`Identity` (today :func:`identity_from_token`: an API token typed once into the
sign-in form), then :meth:`SessionStore.open` starts the session. An OpenID Connect provider can
replace the first step (its callback maps the ID token's subject to a principal) without touching
the rest. The session keeps only the principal's name and the SHA-256 of the token it was opened
with; every request re-checks both (:func:`session_caller`), so a revoked or expired token or a
changed caseload takes effect at once. The cookie is HttpOnly, SameSite=Strict and Secure behind TLS;
a session ends after ``console_session_idle_s`` without a request or ``console_session_max_s``
after sign-in, whichever is first, or at sign-out. Sessions live in memory: a restart signs
everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import FastAPI, Request, Response

from em_service.clock import wall_now
from em_service.store import Store, tokens
from em_service.store.tokens import Caller

COOKIE = "em_console"
#: Before sign-in: the double-submit CSRF value of the sign-in form.
PRE_COOKIE = "em_console_pre"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the identity step says the officer is (the token hash, when a token proved it)."""

    principal: str
    token_sha256: str | None


@dataclass
class ConsoleSession:
    """One signed-in officer: who, since when, last seen, and the CSRF token of their forms."""

    identity: Identity
    created_s: float
    last_seen_s: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: Scenes whose purpose (crime reference) the investigator recorded in this session.
    purposes: set[str] = field(default_factory=set)


def identify(store: Store, token: str, now: datetime | None = None) -> Identity | tokens.Refusal:
    """The token identity step: who holds ``token``, or why it is refused."""
    token_sha256 = tokens.hash_token(token.strip())
    with store.read() as session:
        found = tokens.check_hash(session, token_sha256, now)
    return Identity(found.name, token_sha256) if isinstance(found, Caller) else found


def identity_from_token(store: Store, token: str, now: datetime | None = None) -> Identity | None:
    """The token identity step: the principal holding ``token`` (None if unknown, revoked or
    expired)."""
    found = identify(store, token, now)
    return found if isinstance(found, Identity) else None


class SessionStore:
    """In-memory sessions keyed by the SHA-256 of the cookie value (thread-safe)."""

    def __init__(
        self, idle_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s, self.max_s, self.clock = idle_s, max_s, clock
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(sid: str) -> str:
        return hashlib.sha256(sid.encode()).hexdigest()

    def open(self, identity: Identity) -> tuple[str, ConsoleSession]:
        """Start a session; return the cookie value and the session."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        session = ConsoleSession(identity, created_s=now, last_seen_s=now)
        with self._lock:
            self._expire(now)
            self._sessions[self._key(sid)] = session
        return sid, session

    def get(self, sid: str | None, *, touch: bool = True) -> ConsoleSession | None:
        """Return the live session named by ``sid`` (and mark it used), or None."""
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            key = self._key(sid)
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_seen_s > self.idle_s or now - session.created_s > self.max_s:
                del self._sessions[key]
                return None
            if touch:
                session.last_seen_s = now
            return session

    def close(self, sid: str | None) -> None:
        """End the session (sign-out)."""
        if sid:
            with self._lock:
                self._sessions.pop(self._key(sid), None)

    def _expire(self, now: float) -> None:
        dead = [
            k
            for k, s in self._sessions.items()
            if now - s.last_seen_s > self.idle_s or now - s.created_s > self.max_s
        ]
        for k in dead:
            del self._sessions[k]

    def __len__(self) -> int:
        return len(self._sessions)


def sessions(app: FastAPI) -> SessionStore:
    """Return the app's session store (created on first use)."""
    if getattr(app.state, "console_sessions", None) is None:
        s = app.state.settings
        app.state.console_sessions = SessionStore(s.console_session_idle_s, s.console_session_max_s)
    return app.state.console_sessions


def resolve(store: Store, identity: Identity, now: datetime | None = None) -> Caller | None:
    """Return the caller behind ``identity`` now (None if its token was revoked or expired
    meanwhile)."""
    if identity.token_sha256 is None:
        return None  # an OIDC identity step would resolve the principal by name here
    with store.read() as session:
        caller = tokens.authenticate_hash(session, identity.token_sha256, now)
    return caller if caller is not None and caller.name == identity.principal else None


def session_caller(request: Request, *, touch: bool = True) -> Caller | None:
    """Return the caller of the request's console session cookie, or None."""
    session = sessions(request.app).get(request.cookies.get(COOKIE), touch=touch)
    if session is None:
        return None
    caller = resolve(
        request.app.state.store, session.identity, wall_now(request.app.state.settings)
    )
    if caller is not None:
        request.state.console_session, request.state.caller = session, caller
    return caller


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, Secure when the request came over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False if either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())  # type: ignore[union-attr]
