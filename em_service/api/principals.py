"""``/api/v1/me`` (anyone with a token), ``/api/v1/caseloads/{name}`` and ``/api/v1/tokens``
(admin: list, renew, expire now, revoke one; audited like the CLI and the console)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy.orm import Session

from em_service.api.deps import Admin, AnyCaller, SettingsDep, StoreDep, not_found
from em_service.api.errors import responses
from em_service.api.schemas import CaseloadIn, CaseloadOut, MeOut, TokenOut, TokenRenewIn
from em_service.clock import wall_now
from em_service.settings import Settings
from em_service.store import Store, tokens

router = APIRouter(prefix="/api/v1", tags=["principals"])
PrincipalName = Annotated[str, Path(min_length=1, max_length=100, description="Principal name")]


@router.get("/me", response_model=MeOut, summary="Who this token is", responses=responses(401))
def me(caller: AnyCaller) -> MeOut:
    return MeOut(name=caller.name, role=caller.role, caseload=sorted(caller.caseload))


@router.get(
    "/caseloads/{name}",
    response_model=CaseloadOut,
    summary="A principal's caseload (admin)",
    responses=responses(401, 403, 404, 422),
)
def get_caseload(caller: Admin, store: StoreDep, name: PrincipalName) -> CaseloadOut:
    with store.read() as session:
        if not tokens.principal_exists(session, name):
            raise not_found("principal")
        ids = tokens.caseload_offenders(session, principal=name)
    return CaseloadOut(name=name, offender_ids=sorted(ids))


@router.put(
    "/caseloads/{name}",
    response_model=CaseloadOut,
    summary="Replace a principal's caseload (admin; audited)",
    responses=responses(400, 401, 403, 404, 422),
)
def put_caseload(
    caller: Admin, store: StoreDep, name: PrincipalName, body: CaseloadIn
) -> CaseloadOut:
    with store.write() as session:
        if not tokens.principal_exists(session, name):
            raise not_found("principal")
        ids = tokens.set_caseload(
            session, name=name, offender_ids=body.offender_ids, actor=caller.name
        )
    return CaseloadOut(name=name, offender_ids=ids)


TokenId = Annotated[int, Path(ge=1, le=2**62, description="Token id (GET /api/v1/tokens)")]


def _out(info: tokens.TokenInfo, settings: Settings) -> TokenOut:
    return TokenOut(
        id=info.id,
        principal=info.principal,
        role=info.role,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
        status=info.status(wall_now(settings)),  # type: ignore[arg-type]
    )


@router.get(
    "/tokens",
    response_model=list[TokenOut],
    summary="Every API token: principal, expiry, status (admin)",
    responses=responses(401, 403, 422),
)
def list_tokens(
    caller: Admin,
    store: StoreDep,
    settings: SettingsDep,
    principal: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> list[TokenOut]:
    with store.read() as session:
        return [_out(t, settings) for t in tokens.list_tokens(session, name=principal)]


def _change(
    store: Store, settings: Settings, token_id: int, action: Callable[[Session], object]
) -> TokenOut:
    """Run ``action`` on token ``token_id``; 404 if there is none, 409 if it is revoked."""
    try:
        with store.write() as session:
            action(session)
            found = [t for t in tokens.list_tokens(session) if t.id == token_id]
    except tokens.TokenError as exc:
        if str(exc).startswith("no token"):
            raise not_found("token") from None
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _out(found[0], settings)


@router.post(
    "/tokens/{token_id}/renew",
    response_model=TokenOut,
    summary="Let a token (live or expired) work ttl_days from now (admin; audited)",
    responses=responses(401, 403, 404, 409, 422),
)
def renew_token(
    caller: Admin,
    store: StoreDep,
    settings: SettingsDep,
    token_id: TokenId,
    body: TokenRenewIn | None = None,
) -> TokenOut:
    days = body.ttl_days if body else None
    if days is not None and days > settings.token_max_ttl_days:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"ttl_days: at most {settings.token_max_ttl_days:g}",
        )
    now = wall_now(settings)
    return _change(
        store,
        settings,
        token_id,
        lambda s: tokens.renew_token(
            s,
            token_id=token_id,
            actor=caller.name,
            ttl_days=days,
            default_ttl_days=settings.token_ttl_days,
            max_ttl_days=settings.token_max_ttl_days,
            now=now,
        ),
    )


@router.post(
    "/tokens/{token_id}/expire",
    response_model=TokenOut,
    summary="Make a token expire now; renewable later (admin; audited)",
    responses=responses(401, 403, 404, 409, 422),
)
def expire_token(
    caller: Admin, store: StoreDep, settings: SettingsDep, token_id: TokenId
) -> TokenOut:
    now = wall_now(settings)
    return _change(
        store,
        settings,
        token_id,
        lambda s: tokens.expire_token(s, token_id=token_id, actor=caller.name, now=now),
    )


@router.post(
    "/tokens/{token_id}/revoke",
    response_model=TokenOut,
    summary="Revoke one token for good; the principal's others keep working (admin; audited)",
    responses=responses(401, 403, 404, 422),
)
def revoke_token(
    caller: Admin, store: StoreDep, settings: SettingsDep, token_id: TokenId
) -> TokenOut:
    now = wall_now(settings)
    return _change(
        store,
        settings,
        token_id,
        lambda s: tokens.revoke_token(s, token_id=token_id, actor=caller.name, now=now),
    )
