"""Sign-in (an API token typed once), sign-out and "who am I"."""

from __future__ import annotations

import secrets
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response

from em_service.api import auth_guard
from em_service.clock import wall_now
from em_service.console import sessions as S
from em_service.console.web import PREFIX, ConsoleCaller, check_csrf, local, render
from em_service.store import audit

router = APIRouter(prefix=PREFIX, include_in_schema=False)
_PRE_MAX_AGE_S = 3600


def _audit(request: Request, who: str, role: str, action: str) -> None:
    with request.app.state.store.write() as session:
        audit.append(session, actor=who, role=role, action=action, detail={"via": "console"})


def _sign_in_page(request: Request, error: str | None = None, code: int = 200) -> Response:
    pre = secrets.token_urlsafe(32)
    response = render(request, "sign_in.html", {"pre_csrf": pre, "error": error}, code)
    S.set_cookie(request, response, S.PRE_COOKIE, pre, _PRE_MAX_AGE_S)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not S.same(csrf_token, request.cookies.get(S.PRE_COOKIE)):
        return _sign_in_page(
            request,
            "The sign-in form had expired. Enter your token again.",
            status.HTTP_403_FORBIDDEN,
        )
    if not token.strip():
        return _sign_in_page(request, "Enter your API token", status.HTTP_400_BAD_REQUEST)
    app, store = request.app, request.app.state.store
    client = auth_guard.client_of(request.scope, app.state.settings)
    wait = auth_guard.blocked(app, client)
    if wait is not None:
        response = _sign_in_page(
            request,
            f"Too many failed sign-ins from this computer. Try again in {wait} seconds.",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    at = wall_now(app.state.settings)
    identity = await anyio.to_thread.run_sync(S.identify, store, token, at)
    if not isinstance(identity, S.Identity):
        await anyio.to_thread.run_sync(auth_guard.failed, app, client, identity, "console")
        message = (
            "That token has expired. Ask an admin to renew it."
            if identity == "expired"
            else "That token is not known or has been revoked"
        )
        return _sign_in_page(request, message, status.HTTP_401_UNAUTHORIZED)
    caller = await anyio.to_thread.run_sync(S.resolve, store, identity, at)
    if caller is None:  # revoked between the two reads
        return _sign_in_page(request, "That token has just been revoked", 401)
    sid, _ = await anyio.to_thread.run_sync(S.sessions(request.app).open, identity)
    await anyio.to_thread.run_sync(_audit, request, caller.name, caller.role, "console.sign_in")
    home = {"officer": "/", "investigator": "/scenes", "admin": "/admin/people"}
    target = PREFIX + home.get(caller.role, "/me")
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    settings = request.app.state.settings
    S.set_cookie(request, response, S.COOKIE, sid, int(settings.console_session_max_s))
    response.delete_cookie(S.PRE_COOKIE, path="/")
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, caller: ConsoleCaller, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    check_csrf(request, csrf_token)
    await anyio.to_thread.run_sync(S.sessions(request.app).close, request.cookies.get(S.COOKIE))
    await anyio.to_thread.run_sync(_audit, request, caller.name, caller.role, "console.sign_out")
    response = render(request, "signed_out.html", {"title": "You have signed out"})
    response.delete_cookie(S.COOKIE, path="/")
    return response


@router.get("/me")
def who_am_i(request: Request, caller: ConsoleCaller) -> Response:
    session = request.state.console_session
    store = S.sessions(request.app)
    started = store.clock() - session.created_s
    return render(
        request,
        "me.html",
        {
            "title": "Who am I",
            "me": caller,
            "caseload": sorted(caller.caseload),
            "started_min": int(started // 60),
            "idle_min": int(store.idle_s // 60),
            "max_h": round(store.max_s / 3600, 1),
            "local": local,
        },
    )
