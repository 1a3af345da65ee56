"""The officer's console: server-rendered pages under ``/console`` in the API process.

GOV.UK Frontend and MoJ Frontend styles, Leaflet maps, small scripts of our own; every asset is
served by the app from ``static/`` (vendor files copied from npm by ``scripts/install.sh``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    """Add the console's routes, static files and error pages to ``app`` (its security headers:
    :mod:`em_service.api.security_headers`, with :func:`web.csp`).

    The pages are imported here, not with the package: they use the API's modules, and the API's
    ``deps`` imports ``console.sessions`` (no import cycle, whichever is imported first)."""
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

    web.install_errors(app)
    app.mount(
        web.PREFIX + "/static",
        StaticFiles(directory=web.HERE / "static", check_dir=False),
        name="console-static",
    )
    for module in (auth, queue, people, review, scenes, batches, admin, tags, schedule, principals):
        app.include_router(module.router)
