"""One place for the API's dependencies: settings, the store, and the caller with role checks.

Routes declare what they need with the ``Annotated`` aliases below (``Officer``, ``Admin``…).
No token or an unknown/revoked/expired one → 401 (a client failing too often → 429, see
:mod:`em_service.api.auth_guard`); a role the route does not allow → 403. Caseload
checks (→ 404, never revealing that someone else's offender exists) happen in the routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from em_service.api import auth_guard
from em_service.api.body_guard import STATE_KEY
from em_service.clock import wall_now
from em_service.console.sessions import session_caller
from em_service.settings import Settings
from em_service.store import Store, tokens
from em_service.store.tokens import Caller

bearer = HTTPBearer(
    auto_error=False,
    description="Token from `em-service tokens create --role … --name …`",
)

SAFE_METHODS = frozenset({"GET", "HEAD"})


def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """Return the app's database."""
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[Store, Depends(get_store)]


def get_caller(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """Return the authenticated caller, or raise 401.

    Without a bearer token, a console session cookie is accepted for reads (GET: the console's
    live alert stream); it does not refresh the session's idle timer.
    """
    checked = request.scope.get("state", {}).get(STATE_KEY)
    if checked is not None:  # the body guard authenticated it before reading the body
        request.state.caller = checked
        return checked
    if (credentials is None or not credentials.credentials) and request.method in SAFE_METHODS:
        caller = session_caller(request, touch=False)
        if caller is not None:
            request.state.caller = caller
            return caller
    client = auth_guard.client_of(request.scope, request.app.state.settings)
    wait = auth_guard.blocked(request.app, client)
    if wait is not None:
        detail, headers = auth_guard.too_many(wait)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail, headers=headers)
    if credentials is None or not credentials.credentials:
        auth_guard.failed(request.app, client, "missing", "api")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with store.read() as session:
        found = tokens.check(session, credentials.credentials, wall_now(request.app.state.settings))
    if not isinstance(found, Caller):
        auth_guard.failed(request.app, client, found, "api")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            refusal_message(found),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    caller = found
    request.state.caller = caller
    return caller


def refusal_message(reason: tokens.Refusal) -> str:
    """The 401's message for a refused token."""
    return "token expired" if reason == "expired" else "unknown or revoked token"


def recheck_caller(request: Request) -> Caller | None:
    """Authenticate ``request`` again, as :func:`get_caller` did (bearer token, else the console
    session cookie); None if that authority is gone. Open streams call this periodically."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        with request.app.state.store.read() as session:
            return tokens.authenticate(session, token.strip(), wall_now(request.app.state.settings))
    return session_caller(request, touch=False)


_ALLOWED_QUERY: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422), so a typo never filters
    nothing silently."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _ALLOWED_QUERY.get(id(route))
    if allowed is None:
        allowed = _ALLOWED_QUERY[id(route)] = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown query parameter(s): {', '.join(repr(u) for u in unknown)}",
        )


def require(*roles: tokens.Role):
    """Return a dependency that admits only callers with one of ``roles`` (else 403).

    Order of refusals: no valid token 401, wrong role 403, then unknown query parameters 422.
    """

    def _check(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if caller.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {caller.role!r} may not do this (needs {' or '.join(roles)})",
            )
        reject_unknown_query(request)
        return caller

    return _check


AnyCaller = Annotated[Caller, Depends(require(*tokens.ROLES))]
Officer = Annotated[Caller, Depends(require("officer"))]
Investigator = Annotated[Caller, Depends(require("investigator"))]
Admin = Annotated[Caller, Depends(require("admin"))]
OfficerOrAdmin = Annotated[Caller, Depends(require("officer", "admin"))]
OpsOrAdmin = Annotated[Caller, Depends(require("ops", "admin"))]


def visible(caller: Caller) -> frozenset[str] | None:
    """Return the offenders ``caller`` may see (officers: caseload), None meaning all."""
    return caller.caseload if caller.role == "officer" else None


def not_found(what: str) -> HTTPException:
    """Return the one 404 used for unknown and not-yours alike (no existence leak)."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")
