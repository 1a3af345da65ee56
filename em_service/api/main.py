"""FastAPI application factory: routers, error handlers, request metrics and the lifespan.

The lifespan brings the database schema up to date, starts the conditions producer and the
webhook outlet, freezes what exists then out of the garbage collector's way (``gc.freeze``), and
stops them (and the SSE hub) on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from em_service import __version__, console
from em_service.api import (
    alerts,
    audit,
    auth_guard,
    crime_batches,
    errors,
    health,
    http_metrics,
    offenders,
    principals,
    scenes,
    trails,
)
from em_service.api.alert_stream import hub
from em_service.api.body_guard import BodyGuard
from em_service.api.conditions_publisher import ConditionsPublisher
from em_service.api.deps import reject_unknown_query
from em_service.api.query_guard import RejectRepeatedQuery
from em_service.api.security_headers import SecurityHeaders
from em_service.api.webhook import WebhookOutlet
from em_service.clock import wall_now
from em_service.console.web import csp
from em_service.contracts import Conditions
from em_service.settings import Settings, get_settings
from em_service.store import Store, checkpoints, migrate, open_store

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Prepare the database, start the producer and the webhook outlet; stop them after."""
    settings: Settings = app.state.settings
    store = app.state.store
    if settings.db_auto_upgrade:
        await anyio.to_thread.run_sync(migrate.upgrade, store)
    await app.state.publisher.start()
    outlet = WebhookOutlet(settings, store)
    outlet.start()
    key = checkpoints.load_key(settings)  # a key that is set but unusable stops the start
    checkpointer = None
    if key is not None:
        checkpointer = asyncio.get_running_loop().create_task(_checkpoints(settings, store, key))
    # What exists now (modules, the app, its caches) lives as long as the app: keep it out of
    # the garbage collector's full collections, which would otherwise walk all of it (~200,000
    # objects, ~100 ms on a 2-core machine) every few big pages such as the caseload review.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if checkpointer is not None:
            checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpointer
        await outlet.stop()
        await hub(app).stop()
        await app.state.publisher.stop()
        store.dispose()


async def _checkpoints(settings: Settings, store: Store, key: bytes) -> None:
    """Write a signed audit checkpoint now and every ``audit_checkpoint_interval_s``."""
    path = checkpoints.checkpoint_path(settings)

    def once() -> None:
        with store.read() as session:
            checkpoints.write(session, path, key, wall_now())

    while True:
        try:
            await anyio.to_thread.run_sync(once)
        except Exception:
            log.exception("audit checkpoint not written (will retry)")
        await asyncio.sleep(settings.audit_checkpoint_interval_s)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Return the OpenAPI document, with the ``Conditions`` contract's JSON Schema included."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _, components = msgspec.json.schema_components(
        [Conditions], ref_template="#/components/schemas/{name}"
    )
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():  # any route that authenticates may be throttled
            if "401" in op.get("responses", {}):
                op["responses"]["429"] = {
                    "description": "Too many failed authentications from this client "
                    "(Retry-After says when to try again)",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
                    },
                }
    app.openapi_schema = doc
    return doc


class _Api(FastAPI):
    """The app with :class:`SecurityHeaders` outside everything: Starlette answers an uncaught
    exception (500) from its ServerErrorMiddleware, which sits outside every user middleware."""

    console_policy: str = ""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), self.console_policy)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the API app; nothing heavy is built before this is called."""
    settings = settings or get_settings()
    docs = settings.api_docs_enabled
    app = _Api(
        title="EM alert service",
        debug=False,  # an uncaught error is a bare 500 (errors.py), never a traceback
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        version=__version__,
        description=(
            "Alerts, offender status, trails and audit for IOM teams. Bearer tokens carry one "
            "role: officer (alerts and status of their caseload), investigator (trails, purpose "
            "required), ops (metrics), admin (conditions, caseloads, audit). Every error is "
            'JSON `{"detail": "…"}`.'
        ),
        lifespan=lifespan,
    )
    app.console_policy = csp(settings.console_tile_url)
    app.state.settings = settings
    app.state.store = open_store(settings)
    app.state.publisher = ConditionsPublisher(settings)
    app.state.auth_throttle = auth_guard.AuthThrottle(
        settings.api_auth_failures_max,
        settings.api_auth_failures_window_s,
        settings.api_auth_throttle_max_clients,
    )
    errors.install(app)
    app.add_middleware(RejectRepeatedQuery)
    app.add_middleware(BodyGuard)
    app.add_middleware(http_metrics.RequestMetrics)
    app.include_router(health.router, dependencies=[Depends(reject_unknown_query)])
    for module in (
        http_metrics,
        principals,
        alerts,
        offenders,
        trails,
        audit,
        scenes,
        crime_batches,
    ):
        app.include_router(module.router)
    console.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
