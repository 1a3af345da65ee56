"""FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from em_service import __version__
from em_service.api import health
from em_service.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the API app; nothing heavy is built before this is called."""
    app = FastAPI(
        title="EM alert service",
        version=__version__,
        description="Alerts, offender status and crime-scene matches for IOM teams.",
    )
    app.state.settings = settings or get_settings()
    app.include_router(health.router)
    app.mount("/metrics", make_asgi_app())
    return app
