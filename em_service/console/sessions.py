"""Server-side console sessions: a random cookie names a session kept in the database.

Sign-in is two steps kept apart on purpose: an *identity step* proves who the officer is and
yields an :class:`Identity` (today :func:`identity_from_token`: an API token typed once into the
sign-in form), then :meth:`SessionStore.open` starts the session. An OpenID Connect provider can
replace the first step (its callback maps the ID token's subject to a principal) without touching
the rest. The session keeps only the principal's name and the SHA-256 of the token it was opened
with; every request re-checks both (:func:`session_caller`), so a revoked or expired token or a
changed caseload takes effect at once. The cookie is HttpOnly, SameSite=Strict and Secure behind TLS;
a session ends after ``console_session_idle_s`` without a request or ``console_session_max_s``
after sign-in, whichever is first, or at sign-out.

Sessions live in the ``console_sessions`` table, so every API process behind a load balancer
knows every session and a sign-out on one ends it on all; a restart signs nobody out. The table
holds the SHA-256 of the cookie value, never the value; the form CSRF token is an HMAC of the
cookie value, so it is not stored at all. A request costs one primary-key read (in the same
transaction as the token check); ``last_seen`` is written at most every ``TOUCH_S`` seconds, so
a session may end up to that much before its idle limit. Expired rows are deleted at the next
sign-in and by the archiver's retention job (``store/retention.py``: once ``expires_at`` is
past), so a quiet console keeps no ended session (nor the purposes recorded in it). The session
clock is the settings' wall clock (:func:`~em_service.clock.wall_now`), the one retention uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.store import Store, tokens
from em_service.store.models import ConsoleSessionRow
from em_service.store.tokens import Caller

COOKIE = "em_console"
#: Before sign-in: the double-submit CSRF value of the sign-in form.
PRE_COOKIE = "em_console_pre"
#: ``last_seen`` is written when it is older than this (at most one write per session per 30 s).
TOUCH_S = 30.0


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
    csrf: str
    key: str = ""
    #: Scenes whose purpose (crime reference) the investigator recorded in this session.
    purposes: frozenset[str] = field(default_factory=frozenset)


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


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def csrf_of(sid: str) -> str:
    """The CSRF token of the session named by cookie value ``sid`` (derived, never stored)."""
    mac = hmac.new(sid.encode(), b"em-console-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class SessionStore:
    """Sessions in the database keyed by the SHA-256 of the cookie value (any API process)."""

    def __init__(
        self,
        store: Store,
        idle_s: float,
        max_s: float,
        clock: Callable[[], float] = time.time,
        touch_s: float = TOUCH_S,
    ) -> None:
        self.store, self.idle_s, self.max_s, self.clock = store, idle_s, max_s, clock
        self.touch_s = min(touch_s, idle_s / 4)

    def open(self, identity: Identity) -> tuple[str, ConsoleSession]:
        """Start a session; return the cookie value and the session (expired ones are purged)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self.store.write() as s:
            self._purge(s, now)
            s.add(
                ConsoleSessionRow(
                    sid_sha256=_key(sid),
                    principal=identity.principal,
                    token_sha256=identity.token_sha256,
                    created_at=_dt(now),
                    last_seen_at=_dt(now),
                    expires_at=_dt(now + self.max_s),
                    purposes_json="[]",
                )
            )
        return sid, ConsoleSession(identity, now, now, csrf_of(sid), _key(sid))

    def lookup(self, s: Session, sid: str | None, now: float) -> tuple[ConsoleSession | None, bool]:
        """Return (the live session named by ``sid`` or None, whether it has expired) using
        ``s`` (one primary-key read)."""
        if not sid:
            return None, False
        row = s.get(ConsoleSessionRow, _key(sid))
        if row is None:
            return None, False
        created, seen = row.created_at.timestamp(), row.last_seen_at.timestamp()
        if now - seen > self.idle_s or now - created > self.max_s:
            return None, True
        identity = Identity(row.principal, row.token_sha256)
        purposes = frozenset(json.loads(row.purposes_json))
        return ConsoleSession(
            identity, created, seen, csrf_of(sid), row.sid_sha256, purposes
        ), False

    def after_lookup(
        self, session: ConsoleSession | None, expired: bool, now: float, *, touch: bool
    ) -> None:
        """Write what a lookup found due: delete an expired session, or record a use at most
        every ``touch_s``."""
        if session is None:
            if expired:
                self._purge_now(now)
            return
        if touch and now - session.last_seen_s >= self.touch_s:
            with self.store.write() as s:
                s.execute(
                    update(ConsoleSessionRow)
                    .where(ConsoleSessionRow.sid_sha256 == session.key)
                    .values(last_seen_at=_dt(now))
                )
            session.last_seen_s = now

    def add_purpose(self, session: ConsoleSession, scene_id: str) -> None:
        """Record that the purpose of ``scene_id`` was given in this session."""
        with self.store.write() as s:
            row = s.get(ConsoleSessionRow, session.key, with_for_update=True)
            if row is not None:
                row.purposes_json = json.dumps(sorted({*json.loads(row.purposes_json), scene_id}))
        session.purposes = session.purposes | {scene_id}

    def close(self, sid: str | None) -> None:
        """End the session (sign-out), for every API process."""
        if sid:
            with self.store.write() as s:
                s.execute(
                    delete(ConsoleSessionRow).where(ConsoleSessionRow.sid_sha256 == _key(sid))
                )

    def _purge(self, s: Session, now: float) -> None:
        s.execute(
            delete(ConsoleSessionRow).where(
                or_(
                    ConsoleSessionRow.expires_at < _dt(now),
                    ConsoleSessionRow.last_seen_at < _dt(now - self.idle_s),
                )
            )
        )

    def _purge_now(self, now: float) -> None:
        with self.store.write() as s:
            self._purge(s, now)

    def __len__(self) -> int:
        """The number of live sessions (all processes)."""
        now = self.clock()
        with self.store.read() as s:
            return (
                s.scalar(
                    select(func.count()).where(
                        ConsoleSessionRow.expires_at >= _dt(now),
                        ConsoleSessionRow.last_seen_at >= _dt(now - self.idle_s),
                    )
                )
                or 0
            )


def sessions(app: FastAPI) -> SessionStore:
    """Return the app's session store (created on first use)."""
    if getattr(app.state, "console_sessions", None) is None:
        s = app.state.settings
        app.state.console_sessions = SessionStore(
            app.state.store,
            s.console_session_idle_s,
            s.console_session_max_s,
            clock=lambda: wall_now(s).timestamp(),
        )
    return app.state.console_sessions


def record_purpose(request: Request, key: str) -> None:
    """Remember in the request's session that the purpose of ``key`` (a scene id, or a batch's
    purpose key) was recorded."""
    sessions(request.app).add_purpose(request.state.console_session, key)


def _caller_of(s: Session, identity: Identity, now: datetime | None = None) -> Caller | None:
    if identity.token_sha256 is None:
        return None  # an OIDC identity step would resolve the principal by name here
    caller = tokens.authenticate_hash(s, identity.token_sha256, now)
    return caller if caller is not None and caller.name == identity.principal else None


def resolve(store: Store, identity: Identity, now: datetime | None = None) -> Caller | None:
    """Return the caller behind ``identity`` now (None if its token was revoked or expired
    meanwhile)."""
    with store.read() as session:
        return _caller_of(session, identity, now)


def session_caller(request: Request, *, touch: bool = True) -> Caller | None:
    """Return the caller of the request's console session cookie, or None."""
    store = sessions(request.app)
    now = store.clock()
    token_now = wall_now(request.app.state.settings)
    with request.app.state.store.read() as s:  # one transaction: the session, then its token
        session, expired = store.lookup(s, request.cookies.get(COOKIE), now)
        caller = None if session is None else _caller_of(s, session.identity, token_now)
    store.after_lookup(session, expired, now, touch=touch)
    if session is not None and caller is not None:
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
