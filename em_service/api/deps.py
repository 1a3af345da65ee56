"""One place for the API's dependencies (settings now; database and auth later)."""

from __future__ import annotations

from fastapi import Request

from em_service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    return request.app.state.settings
