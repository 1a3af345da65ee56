"""Admin pages for principals: create a token (shown once), revoke one, set an officer's
caseload. The store functions and audit rows are the CLI's and the API's
(``store.tokens``: ``token.create``, ``token.revoke``, ``caseload.set``), with the admin as actor."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from em_service.api.schemas import IDENT_PATTERN
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
        loads = session.execute(select(CaseloadEntry.principal_id, CaseloadEntry.offender_id)).all()
        rows = [
            {
                "name": p.name,
                "role": p.role,
                "tokens": [t for t in live if t.principal_id == p.id],
                "caseload": sorted(o for pid, o in loads if pid == p.id),
            }
            for p in people
        ]
        session.expunge_all()
    return render(
        request,
        "admin_tokens.html",
        {
            "title": "Tokens and caseloads",
            "rows": rows,
            "roles": tokens.ROLES,
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
) -> Response:
    """Create a token; its text is on this response only (never stored, never in a URL)."""
    check_csrf(request, csrf_token)
    if not _NAME.match(name.strip()):
        return _page(
            request, error="Enter a name: letters, digits, dot, dash, @ or colon", code=422
        )
    if role not in tokens.ROLES:
        return _page(request, error="Choose a role", code=422)
    try:
        with request.app.state.store.write() as session:
            text = tokens.create_token(session, name=name.strip(), role=role, actor=caller.name)  # type: ignore[arg-type]
    except tokens.TokenError as exc:
        return _page(request, error=str(exc), code=409)
    return _page(request, new_token=text, made_for=name.strip())


@router.post("/tokens/{token_id}/revoke")
def token_revoke(
    request: Request, caller: ConsoleAdmin, token_id: int, csrf_token: _Csrf = ""
) -> Response:
    check_csrf(request, csrf_token)
    try:
        with request.app.state.store.write() as session:
            tokens.revoke_token(session, token_id=token_id, actor=caller.name)
    except tokens.TokenError as exc:
        raise HTTPException(http.HTTP_404_NOT_FOUND, str(exc)) from None
    return RedirectResponse(f"{PREFIX}/admin/tokens", status_code=http.HTTP_303_SEE_OTHER)


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
