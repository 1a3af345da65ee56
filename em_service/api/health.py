"""``/healthz`` (the process is up) and ``/readyz`` (its dependencies answer: Kafka, database).

``/readyz`` says what the API waits for (``kafka``, ``database``: ``ok`` or ``unavailable``)
to anyone, but the underlying error text only to an ops or admin token (``detail``); it is
logged either way. Internal errors say too much about the deployment to be public.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from em_service import kafka_io
from em_service.api.deps import StoreDep, get_app_settings
from em_service.api.errors import responses
from em_service.clock import wall_now
from em_service.settings import Settings
from em_service.store import Store, migrate, tokens

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness or readiness, with one line per dependency."""

    status: str
    checks: dict[str, str] = {}
    detail: dict[str, str] | None = None  # error text per failing check: ops and admin only


async def kafka_answers(
    bootstrap: str, timeout_s: float = 3.0, settings: Settings | None = None
) -> str | None:
    """Return None when Kafka answers a metadata request, else the error text."""
    admin = kafka_io.admin(bootstrap, settings, request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        await admin.list_topics()
        return None
    except Exception as exc:  # any failure means "not ready"; its text is the answer
        return f"{type(exc).__name__}: {exc}"
    finally:
        await admin.close()


def database_answers(store: Store) -> str | None:
    """Return None when the database answers and its schema is current, else the problem."""
    try:
        if not migrate.is_current(store):
            return "schema is not current (run `em-service db upgrade`)"
        return None
    except Exception as exc:  # any failure means "not ready"; its text is the answer
        return f"{type(exc).__name__}: {exc}"


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness: the API process runs",
    responses=responses(422),
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: Kafka and the database answer",
    responses={
        503: {"model": Health, "description": "a dependency does not answer"},
        **responses(422),
    },
)
async def readyz(
    request: Request,
    response: Response,
    settings: Annotated[Settings, Depends(get_app_settings)],
    store: StoreDep,
) -> Health:
    problems = {
        "kafka": await kafka_answers(settings.kafka_bootstrap, settings=settings),
        "database": await anyio.to_thread.run_sync(database_answers, store),
    }
    checks = {k: "unavailable" if v else "ok" for k, v in problems.items()}
    if not any(problems.values()):
        return Health(status="ok", checks=checks)
    for name, problem in problems.items():
        if problem:
            log.warning("not ready: %s: %s", name, problem)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    detail = None
    authorization = request.headers.get("authorization")
    if await anyio.to_thread.run_sync(_is_ops, store, authorization, wall_now(settings)):
        detail = {k: v for k, v in problems.items() if v}
    return Health(status="unavailable", checks=checks, detail=detail)


def _is_ops(store: Store, authorization: str | None, now: datetime) -> bool:
    """Whether the caller sent an ops or admin token valid at ``now`` (the settings' clock, as
    every other token check).

    Read by hand, not as a security dependency: readiness is open to all (never 401/403) and
    the token only adds the detail.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        with store.read() as session:
            caller = tokens.authenticate(session, token.strip(), now)
    except Exception:  # the database may be what is down
        return False
    return caller is not None and caller.role in ("ops", "admin")
