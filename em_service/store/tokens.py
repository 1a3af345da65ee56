"""Principals, their bearer tokens (stored only as SHA-256) and caseloads.

A token is 32 random bytes (``em_`` + URL-safe base64), shown once at creation. With that much
entropy a plain SHA-256 is enough to make a stolen table useless (no password-style KDF needed),
and lookups are one indexed equality.

Every token expires (``expires_at``; default ``EM_TOKEN_TTL_DAYS`` = 90 days after creation,
at most ``EM_TOKEN_MAX_TTL_DAYS``). An admin may renew a live or expired token, expire it now
(renewable later) or revoke it (final); each is audited (``token.renew``, ``token.expire``,
``token.revoke``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.store import audit
from em_service.store.models import ApiToken, CaseloadEntry, Principal

Role = Literal["officer", "investigator", "ops", "admin", "force-feed"]
#: ``force-feed``: a police force's automated sender (uploads crime batches, nothing else).
ROLES: tuple[Role, ...] = ("officer", "investigator", "ops", "admin", "force-feed")
TOKEN_PREFIX = "em_"
DEFAULT_TTL_DAYS = 90.0
DEFAULT_MAX_TTL_DAYS = 366.0
#: Why a token was refused (also the ``reason`` label of the auth failure metric).
Refusal = Literal["unknown", "revoked", "expired"]


class TokenError(ValueError):
    """A principal or token request that cannot be honoured (message says why)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal: name, role and (for officers) their caseload."""

    name: str
    role: Role
    caseload: frozenset[str]

    def sees(self, offender_id: str) -> bool:
        """Return True if this caller may see ``offender_id`` (officers: caseload only)."""
        return self.role != "officer" or offender_id in self.caseload


def hash_token(token: str) -> str:
    """Return the stored form of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One token as admins see it (never its text)."""

    id: int
    principal: str
    role: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired`` or ``live`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "live"


def lifetime(ttl_days: float | None, *, default_days: float, max_days: float) -> timedelta:
    """Return the lifetime asked for (``None``: the default), refused if not in (0, max]."""
    days = default_days if ttl_days is None else ttl_days
    if not 0 < days <= max_days:
        raise TokenError(f"token lifetime must be more than 0 and at most {max_days:g} days")
    return timedelta(days=days)


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    caseload: Iterable[str] = (),
    actor: str = "cli",
    ttl_days: float | None = None,
    default_ttl_days: float = DEFAULT_TTL_DAYS,
    max_ttl_days: float = DEFAULT_MAX_TTL_DAYS,
    now: datetime | None = None,
) -> str:
    """Create the principal ``name`` if needed, add a token for it and return the token text.

    The token expires ``ttl_days`` (default ``default_ttl_days``, at most ``max_ttl_days``)
    after ``now``. An existing principal keeps its role; asking for another role is an error.
    """
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    ttl = lifetime(ttl_days, default_days=default_ttl_days, max_days=max_ttl_days)
    now = now or wall_now()
    principal = session.scalar(select(Principal).where(Principal.name == name))
    if principal is None:
        principal = Principal(name=name, role=role, created_at=now)
        session.add(principal)
        session.flush()
    elif principal.role != role:
        raise TokenError(f"principal {name!r} exists with role {principal.role!r}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        principal_id=principal.id,
        token_sha256=hash_token(token),
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="token.create",
        detail={
            "principal": name,
            "role": role,
            "token_id": row.id,
            "expires_at": row.expires_at.isoformat(),
        },
        at=now,
    )
    caseload = list(caseload)
    if caseload:
        assign_caseload(session, name=name, offender_ids=caseload, actor=actor)
    return token


def revoke_tokens(session: Session, *, name: str, actor: str = "cli") -> int:
    """Revoke every live token of principal ``name``; return how many."""
    principal = _principal(session, name)
    now = wall_now()
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.principal_id == principal.id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        token.revoked_at = now
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="token.revoke",
        detail={"principal": name, "revoked": len(tokens)},
    )
    return len(tokens)


def _token(session: Session, token_id: int) -> tuple[ApiToken, Principal]:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise TokenError(f"no token {token_id}")
    return token, session.get(Principal, token.principal_id)  # type: ignore[return-value]


def revoke_token(
    session: Session, *, token_id: int, actor: str = "cli", now: datetime | None = None
) -> str:
    """Revoke one token (by its row id); return its principal's name. Already revoked: no-op.
    The principal's other tokens keep working."""
    token, principal = _token(session, token_id)
    if token.revoked_at is None:
        token.revoked_at = now or wall_now()
        audit.append(
            session,
            actor=actor,
            role="admin",
            action="token.revoke",
            detail={"principal": principal.name, "token_id": token_id, "revoked": 1},
            at=token.revoked_at,
        )
    return principal.name


def renew_token(
    session: Session,
    *,
    token_id: int,
    actor: str = "cli",
    ttl_days: float | None = None,
    default_ttl_days: float = DEFAULT_TTL_DAYS,
    max_ttl_days: float = DEFAULT_MAX_TTL_DAYS,
    now: datetime | None = None,
) -> datetime:
    """Let one token (live or expired, not revoked) work ``ttl_days`` from ``now``; return the
    new expiry."""
    ttl = lifetime(ttl_days, default_days=default_ttl_days, max_days=max_ttl_days)
    token, principal = _token(session, token_id)
    if token.revoked_at is not None:
        raise TokenError(f"token {token_id} is revoked; create a new one")
    now = now or wall_now()
    before, token.expires_at = token.expires_at, now + ttl
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="token.renew",
        detail={
            "principal": principal.name,
            "token_id": token_id,
            "expired_at" if before <= now else "was_expiring_at": before.isoformat(),
            "expires_at": token.expires_at.isoformat(),
        },
        at=now,
    )
    return token.expires_at


def expire_token(
    session: Session, *, token_id: int, actor: str = "cli", now: datetime | None = None
) -> None:
    """Make one token expire at ``now`` (it can be renewed later; revoking is final)."""
    token, principal = _token(session, token_id)
    if token.revoked_at is not None:
        raise TokenError(f"token {token_id} is revoked")
    now = now or wall_now()
    if token.expires_at <= now:
        return  # already expired: nothing to record
    token.expires_at = now
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="token.expire",
        detail={"principal": principal.name, "token_id": token_id},
        at=now,
    )


def list_tokens(session: Session, *, name: str | None = None) -> list[TokenInfo]:
    """Return every token (of principal ``name``), oldest first."""
    stmt = (
        select(ApiToken, Principal.name, Principal.role)
        .join(Principal, Principal.id == ApiToken.principal_id)
        .order_by(ApiToken.id)
    )
    if name is not None:
        stmt = stmt.where(Principal.name == name)
    return [
        TokenInfo(t.id, n, r, t.created_at, t.expires_at, t.revoked_at)
        for t, n, r in session.execute(stmt).all()
    ]


def count_expiring(session: Session, *, now: datetime, within: timedelta) -> int:
    """Return how many live tokens expire within ``within`` of ``now``."""
    return session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
            ApiToken.expires_at <= now + within,
        )
    )


def _principal(session: Session, name: str) -> Principal:
    principal = session.scalar(select(Principal).where(Principal.name == name))
    if principal is None:
        raise TokenError(f"no principal named {name!r}")
    return principal


def assign_caseload(
    session: Session,
    *,
    name: str,
    offender_ids: Iterable[str],
    remove: bool = False,
    actor: str = "cli",
) -> list[str]:
    """Add (or ``remove``) offenders on ``name``'s caseload; return the caseload afterwards."""
    principal = _principal(session, name)
    ids = sorted(set(offender_ids))
    current = set(
        session.scalars(
            select(CaseloadEntry.offender_id).where(CaseloadEntry.principal_id == principal.id)
        )
    )
    if remove:
        session.execute(
            delete(CaseloadEntry).where(
                CaseloadEntry.principal_id == principal.id, CaseloadEntry.offender_id.in_(ids)
            )
        )
        current -= set(ids)
    else:
        for offender_id in set(ids) - current:
            session.add(CaseloadEntry(principal_id=principal.id, offender_id=offender_id))
        current |= set(ids)
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="caseload.remove" if remove else "caseload.assign",
        detail={"principal": name, "offender_ids": ids},
    )
    session.flush()
    return sorted(current)


def principal_exists(session: Session, name: str) -> bool:
    """Return True if a principal called ``name`` exists."""
    return session.scalar(select(Principal.id).where(Principal.name == name)) is not None


def set_caseload(
    session: Session, *, name: str, offender_ids: Iterable[str], actor: str
) -> list[str]:
    """Replace ``name``'s caseload with ``offender_ids``; return it (audited as the change)."""
    principal = _principal(session, name)
    wanted = set(offender_ids)
    current = set(
        session.scalars(
            select(CaseloadEntry.offender_id).where(CaseloadEntry.principal_id == principal.id)
        )
    )
    session.execute(
        delete(CaseloadEntry).where(
            CaseloadEntry.principal_id == principal.id,
            CaseloadEntry.offender_id.in_(sorted(current - wanted)),
        )
    )
    for offender_id in sorted(wanted - current):
        session.add(CaseloadEntry(principal_id=principal.id, offender_id=offender_id))
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="caseload.set",
        detail={
            "principal": name,
            "added": sorted(wanted - current),
            "removed": sorted(current - wanted),
        },
    )
    session.flush()
    return sorted(wanted)


def authenticate(session: Session, token: str, now: datetime | None = None) -> Caller | None:
    """Return the caller holding ``token``, or None if it is unknown, revoked or expired."""
    return authenticate_hash(session, hash_token(token), now)


def authenticate_hash(
    session: Session, token_sha256: str, now: datetime | None = None
) -> Caller | None:
    """Return the caller holding the token with this stored hash, or None if unknown, revoked
    or expired (console sessions keep only the hash and re-check it on every request)."""
    found = check_hash(session, token_sha256, now)
    return found if isinstance(found, Caller) else None


def check(session: Session, token: str, now: datetime | None = None) -> Caller | Refusal:
    """Return the caller holding ``token`` or why it is refused."""
    return check_hash(session, hash_token(token), now)


def check_hash(
    session: Session, token_sha256: str, now: datetime | None = None
) -> Caller | Refusal:
    """Return the caller holding the token with this stored hash, or why it is refused."""
    row = session.execute(
        select(
            Principal.id, Principal.name, Principal.role, ApiToken.revoked_at, ApiToken.expires_at
        )
        .join(ApiToken, ApiToken.principal_id == Principal.id)
        .where(ApiToken.token_sha256 == token_sha256)
    ).first()
    if row is None:
        return "unknown"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= (now or wall_now()):
        return "expired"
    caseload: frozenset[str] = frozenset()
    if row.role == "officer":
        caseload = frozenset(
            session.scalars(
                select(CaseloadEntry.offender_id).where(CaseloadEntry.principal_id == row.id)
            )
        )
    return Caller(name=row.name, role=row.role, caseload=caseload)


def caseload_offenders(
    session: Session, *, principal: str | None = None, role: str | None = None
) -> set[str]:
    """Return offenders on ``principal``'s caseload, or on caseloads of anyone with ``role``."""
    stmt = select(CaseloadEntry.offender_id).join(
        Principal, Principal.id == CaseloadEntry.principal_id
    )
    if principal is not None:
        stmt = stmt.where(Principal.name == principal)
    if role is not None:
        stmt = stmt.where(Principal.role == role)
    return set(session.scalars(stmt))
