"""Admin pages for principals: create a token (shown once; a lifetime in days), renew one,
expire one now, revoke one, set an officer's caseload. The store functions and audit rows are
the CLI's and the API's (``store.tokens``: ``token.create``, ``token.renew``, ``token.expire``,
``token.revoke``, ``caseload.set``), with the admin as actor."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from em_service.api.schemas import IDENT_PATTERN
from em_service.clock import wall_now
from em_service.console.web import PREFIX, ConsoleAdmin, check_csrf, render
from em_service.store import tokens
from em_service.store.models import ApiToken, CaseloadEntry, Principal

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:\-]{0,99}$")
_Csrf = Annotated[str, Form(max_length=200)]


def _page(
    request: Request,
    *,
    new_token: str | None = None,
    made_for: str = "",
    error: str = "",
    code: int = 200,
) -> Response:
    with request.app.state.store.read() as session:
        people = session.scalars(select(Principal).order_by(Principal.name)).all()
        live = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
        at = _now(request)
        soon = at + timedelta(days=7)
        loads = session.execute(select(CaseloadEntry.principal_id, CaseloadEntry.offender_id)).all()
        rows = [
            {
                "name": p.name,
                "role": p.role,
                "tokens": [
                    {
                        "id": t.id,
                        "created_at": t.created_at,
                        "expires_at": t.expires_at,
                        "revoked_at": t.revoked_at,
                        "status": "revoked"
                        if t.revoked_at
                        else "expired"
                        if t.expires_at <= at
                        else "expiring"
                        if t.expires_at <= soon
                        else "live",
                    }
                    for t in live
                    if t.principal_id == p.id
                ],
                "caseload": sorted(o for pid, o in loads if pid == p.id),
            }
            for p in people
        ]
        session.expunge_all()
    settings = request.app.state.settings
    return render(
        request,
        "admin_tokens.html",
        {
            "title": "Tokens and caseloads",
            "rows": rows,
            "roles": tokens.ROLES,
            "ttl_days": settings.token_ttl_days,
            "max_ttl_days": settings.token_max_ttl_days,
            "new_token": new_token,
            "made_for": made_for,
            "error": error,
        },
        status_code=code,
    )


@router.get("/tokens")
def tokens_page(request: Request, caller: ConsoleAdmin) -> Response:
    return _page(request)


@router.post("/tokens")
def token_create(
    request: Request,
    caller: ConsoleAdmin,
    csrf_token: _Csrf = "",
    name: Annotated[str, Form(max_length=100)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    ttl_days: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Create a token; its text is on this response only (never stored, never in a URL)."""
    check_csrf(request, csrf_token)
    if not _NAME.match(name.strip()):
        return _page(
            request, error="Enter a name: letters, digits, dot, dash, @ or colon", code=422
        )
    if role not in tokens.ROLES:
        return _page(request, error="Choose a role", code=422)
    days = _days(ttl_days)
    if days == "bad":
        return _page(request, error="Enter the lifetime as a number of days", code=422)
    try:
        with request.app.state.store.write() as session:
            text = tokens.create_token(
                session,
                name=name.strip(),
                role=role,  # type: ignore[arg-type]
                actor=caller.name,
                ttl_days=days,  # type: ignore[arg-type]
                now=_now(request),
                **_ttl(request),
            )
    except tokens.TokenError as exc:
        return _page(request, error=str(exc), code=409 if "exists" in str(exc) else 422)
    return _page(request, new_token=text, made_for=name.strip())


def _days(text: str) -> float | str | None:
    """The lifetime typed in days (None: the default; ``"bad"``: not a number)."""
    if not text.strip():
        return None
    try:
        days = float(text)
    except ValueError:
        return "bad"
    return days if days == days else "bad"  # NaN


def _now(request: Request) -> datetime:
    """The clock tokens are checked by (the API's wall clock, not the console's display clock)."""
    return wall_now(request.app.state.settings)


def _ttl(request: Request) -> dict[str, float]:
    s = request.app.state.settings
    return {"default_ttl_days": s.token_ttl_days, "max_ttl_days": s.token_max_ttl_days}


def _change(request: Request, action) -> Response:
    """Run ``action(session)`` on a token; back to the page (404: no such token; 409: revoked)."""
    try:
        with request.app.state.store.write() as session:
            action(session)
    except tokens.TokenError as exc:
        code = http.HTTP_404_NOT_FOUND if str(exc).startswith("no token") else 409
        raise HTTPException(code, str(exc)) from None
    return RedirectResponse(f"{PREFIX}/admin/tokens", status_code=http.HTTP_303_SEE_OTHER)


@router.post("/tokens/{token_id}/revoke")
def token_revoke(
    request: Request, caller: ConsoleAdmin, token_id: int, csrf_token: _Csrf = ""
) -> Response:
    """Revoke one token (final); the principal's other tokens keep working."""
    check_csrf(request, csrf_token)
    at = _now(request)
    return _change(
        request, lambda s: tokens.revoke_token(s, token_id=token_id, actor=caller.name, now=at)
    )


@router.post("/tokens/{token_id}/renew")
def token_renew(
    request: Request, caller: ConsoleAdmin, token_id: int, csrf_token: _Csrf = ""
) -> Response:
    """Let one token work ``token_ttl_days`` from now (also an expired one)."""
    check_csrf(request, csrf_token)
    at, ttl = _now(request), _ttl(request)
    return _change(
        request,
        lambda s: tokens.renew_token(s, token_id=token_id, actor=caller.name, now=at, **ttl),
    )


@router.post("/tokens/{token_id}/expire")
def token_expire(
    request: Request, caller: ConsoleAdmin, token_id: int, csrf_token: _Csrf = ""
) -> Response:
    """Make one token expire now (renewable later)."""
    check_csrf(request, csrf_token)
    at = _now(request)
    return _change(
        request, lambda s: tokens.expire_token(s, token_id=token_id, actor=caller.name, now=at)
    )


@router.post("/caseloads/{name}")
def caseload_set(
    request: Request,
    caller: ConsoleAdmin,
    name: str,
    csrf_token: _Csrf = "",
    offender_ids: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Replace a principal's caseload (as ``PUT /api/v1/caseloads/{name}``)."""
    check_csrf(request, csrf_token)
    ids = [i for i in re.split(r"[\s,]+", offender_ids) if i]
    bad = [i for i in ids if not re.fullmatch(IDENT_PATTERN, i) or len(i) > 64]
    if bad:
        return _page(request, error=f"Not a person id: {', '.join(bad[:5])}", code=422)
    with request.app.state.store.write() as session:
        if not tokens.principal_exists(session, name):
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such principal")
        tokens.set_caseload(session, name=name, offender_ids=ids, actor=caller.name)
    return RedirectResponse(f"{PREFIX}/admin/tokens", status_code=http.HTTP_303_SEE_OTHER)
