"""Console plumbing: templates, the console's CSP (``'self'``), HTML error pages, the signed-in
caller and CSRF checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from em_service.api import errors
from em_service.clock import wall_now
from em_service.console import queries
from em_service.console.sessions import same, session_caller
from em_service.store.tokens import Caller

HERE = Path(__file__).parent
PREFIX = "/console"
LONDON = ZoneInfo("Europe/London")
templates = Jinja2Templates(directory=HERE / "templates")


def local(ts: datetime | None, fmt: str = "%a %d %b %Y %H:%M") -> str:
    """Format an aware time in Europe/London (the officers' clock)."""
    return "" if ts is None else ts.astimezone(LONDON).strftime(fmt)


def ago(ts: datetime | None, now: datetime) -> str:
    """Return how long ago ``ts`` was, in words (``3 h 5 min ago``)."""
    if ts is None:
        return "never"
    s = int((now - ts).total_seconds())
    if s < 0:
        return "in the future"
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d} d"] if d else []
    parts += [f"{h} h"] if h else []
    parts += [f"{m} min"] if (m or not parts) and not d else []
    return " ".join(parts) + " ago"


templates.env.filters["local"] = local
templates.env.filters["label"] = queries.label
templates.env.filters["tier"] = queries.tier_of
templates.env.filters["fromiso"] = lambda text: datetime.fromisoformat(text) if text else None
templates.env.globals["iso"] = lambda ts: ts.astimezone(UTC).isoformat() if ts else ""


def now(request: Request) -> datetime:
    """The console's clock (tests fix it with ``app.state.console_clock``)."""
    clock = getattr(request.app.state, "console_clock", None)
    return clock() if clock else wall_now(request.app.state.settings)


class SignInRequired(Exception):
    """No live console session: go to the sign-in page."""


def console_caller(request: Request) -> Caller:
    """Return the signed-in caller or send them to sign in."""
    caller = session_caller(request)
    if caller is None:
        raise SignInRequired()
    return caller


def console_officer(caller: Annotated[Caller, Depends(console_caller)]) -> Caller:
    """Admit officers only (the console shows an officer's caseload)."""
    if caller.role != "officer":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"These pages are for officers; you are signed in as {caller.role}.",
        )
    return caller


def console_roles(*roles: str, what: str) -> Any:
    """A dependency admitting only ``roles`` (the same roles as the API route behind the page)."""

    def _check(caller: Annotated[Caller, Depends(console_caller)]) -> Caller:
        if caller.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"These pages are for {what}; you are signed in as {caller.role}.",
            )
        return caller

    return _check


ConsoleCaller = Annotated[Caller, Depends(console_caller)]
ConsoleOfficer = Annotated[Caller, Depends(console_officer)]
ConsoleInvestigator = Annotated[
    Caller, Depends(console_roles("investigator", what="investigators"))
]
ConsoleAdmin = Annotated[Caller, Depends(console_roles("admin", what="admins"))]
ConsoleInvestigatorOrAdmin = Annotated[
    Caller, Depends(console_roles("investigator", "admin", what="investigators and admins"))
]


def check_csrf(request: Request, token: str | None) -> None:
    """Refuse (403) a form without the session's CSRF token."""
    session = getattr(request.state, "console_session", None)
    if session is None or not same(token, session.csrf):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "This form was not sent from a page of this console (security check failed). "
            "Go back, reload the page and try again.",
        )


def safe_back(back: str | None, default: str = PREFIX + "/") -> str:
    """Return ``back`` if it is a path inside the console (never another site), else default."""
    if back and back.startswith(PREFIX + "/") and not back.startswith("//"):
        parts = urlsplit(back)
        if not parts.scheme and not parts.netloc:
            return back
    return default


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a console template with the caller, CSRF token and map settings."""
    if getattr(request.state, "console_session", None) is None:
        session_caller(request, touch=False)  # error pages of unmatched paths: still signed in
    session = getattr(request.state, "console_session", None)
    settings = request.app.state.settings
    base = {
        "caller": getattr(request.state, "caller", None) if session else None,
        "csrf": session.csrf if session else "",
        "tile_url": settings.console_tile_url,
        "tile_attribution": settings.console_tile_attribution,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


# --- Security headers ---------------------------------------------------------------------


def _tile_origin(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def csp(tile_url: str) -> str:
    """Return the console's Content-Security-Policy: everything from ``'self'`` (+ the tiles)."""
    tiles = _tile_origin(tile_url)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{' ' + tiles if tiles else ''}; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


# --- Errors as GOV.UK pages -----------------------------------------------------------------

_TITLES = {
    400: "There is a problem with the request",
    403: "You cannot do this",
    404: "Page not found",
    409: "This could not be done",
    422: "There is a problem with the request",
}


def error_page(request: Request, code: int, message: str) -> HTMLResponse:
    """Render the GOV.UK-style error page."""
    title = _TITLES.get(code, "Sorry, there is a problem with the service")
    if code == 404:
        message = "If you typed the web address, check it is correct. You can only see people on your caseload."
    return render(request, "error.html", {"title": title, "message": message}, status_code=code)


def _is_console(request: Request) -> bool:
    return request.url.path.startswith(PREFIX)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    if not _is_console(request):
        return await errors._http(request, exc)
    return error_page(request, exc.status_code, str(exc.detail))


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    if not _is_console(request):
        return await errors._validation(request, exc)
    fields = ", ".join(
        re.sub(r"^(query|body|path)\.", "", ".".join(str(p) for p in e.get("loc", ())))
        for e in exc.errors()
    )
    return error_page(request, 422, f"Check these fields: {fields or 'the form'}.")


async def _sign_in(request: Request, exc: SignInRequired) -> Response:
    return RedirectResponse(PREFIX + "/sign-in", status_code=status.HTTP_303_SEE_OTHER)


def install_errors(app: FastAPI) -> None:
    """Console paths get HTML error pages; the API keeps its JSON errors."""
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(SignInRequired, _sign_in)  # type: ignore[arg-type]
