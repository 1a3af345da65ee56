"""Principals, their bearer tokens (stored only as SHA-256) and caseloads.

A token is 32 random bytes (``em_`` + URL-safe base64), shown once at creation. With that much
entropy a plain SHA-256 is enough to make a stolen table useless (no password-style KDF needed),
and lookups are one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.store import audit
from em_service.store.models import ApiToken, CaseloadEntry, Principal

Role = Literal["officer", "investigator", "ops", "admin", "force-feed"]
#: ``force-feed``: a police force's automated sender (uploads crime batches, nothing else).
ROLES: tuple[Role, ...] = ("officer", "investigator", "ops", "admin", "force-feed")
TOKEN_PREFIX = "em_"


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


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    caseload: Iterable[str] = (),
    actor: str = "cli",
) -> str:
    """Create the principal ``name`` if needed, add a token for it and return the token text.

    An existing principal keeps its role; asking for another role is an error.
    """
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    now = wall_now()
    principal = session.scalar(select(Principal).where(Principal.name == name))
    if principal is None:
        principal = Principal(name=name, role=role, created_at=now)
        session.add(principal)
        session.flush()
    elif principal.role != role:
        raise TokenError(f"principal {name!r} exists with role {principal.role!r}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(principal_id=principal.id, token_sha256=hash_token(token), created_at=now))
    audit.append(
        session,
        actor=actor,
        role="admin",
        action="token.create",
        detail={"principal": name, "role": role},
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


def revoke_token(session: Session, *, token_id: int, actor: str = "cli") -> str:
    """Revoke one token (by its row id); return its principal's name. Already revoked: no-op."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise TokenError(f"no token {token_id}")
    principal = session.get(Principal, token.principal_id)
    if token.revoked_at is None:
        token.revoked_at = wall_now()
        audit.append(
            session,
            actor=actor,
            role="admin",
            action="token.revoke",
            detail={"principal": principal.name, "token_id": token_id, "revoked": 1},
        )
    return principal.name


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


def authenticate(session: Session, token: str) -> Caller | None:
    """Return the caller holding ``token``, or None if it is unknown or revoked."""
    return authenticate_hash(session, hash_token(token))


def authenticate_hash(session: Session, token_sha256: str) -> Caller | None:
    """Return the caller holding the token with this stored hash, or None if unknown or revoked
    (console sessions keep only the hash and re-check it on every request)."""
    row = session.execute(
        select(Principal.id, Principal.name, Principal.role)
        .join(ApiToken, ApiToken.principal_id == Principal.id)
        .where(ApiToken.token_sha256 == token_sha256, ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
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
