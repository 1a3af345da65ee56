"""The officer's console: server-rendered pages under ``/console`` in the API process.

GOV.UK Frontend and MoJ Frontend styles, Leaflet maps, small scripts of our own; every asset is
served by the app from ``static/`` (vendor files copied from npm by ``scripts/install.sh``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from em_service.console import (
    admin,
    auth,
    batches,
    people,
    principals,
    queue,
    review,
    scenes,
    schedule,
    tags,
    web,
)


def install(app: FastAPI) -> None:
    """Add the console's routes, static files, error pages and security headers to ``app``."""
    web.install_errors(app)
    app.add_middleware(web.SecurityHeaders, policy=web.csp(app.state.settings.console_tile_url))
    app.mount(
        web.PREFIX + "/static",
        StaticFiles(directory=web.HERE / "static", check_dir=False),
        name="console-static",
    )
    for module in (auth, queue, people, review, scenes, batches, admin, tags, schedule, principals):
        app.include_router(module.router)
