"""``/healthz`` (the process is up) and ``/readyz`` (its dependencies answer: Kafka, database)."""

from __future__ import annotations

from typing import Annotated

import anyio
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from em_service.api.deps import StoreDep, get_app_settings
from em_service.api.errors import responses
from em_service.settings import Settings
from em_service.store import Store, migrate

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness or readiness, with one line per dependency."""

    status: str
    checks: dict[str, str] = {}


async def kafka_answers(bootstrap: str, timeout_s: float = 3.0) -> str | None:
    """Return None when Kafka answers a metadata request, else the error text."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
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
    response: Response,
    settings: Annotated[Settings, Depends(get_app_settings)],
    store: StoreDep,
) -> Health:
    checks = {
        "kafka": await kafka_answers(settings.kafka_bootstrap),
        "database": await anyio.to_thread.run_sync(database_answers, store),
    }
    if any(checks.values()):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", checks={k: v or "ok" for k, v in checks.items()})
    return Health(status="ok", checks={k: "ok" for k in checks})
