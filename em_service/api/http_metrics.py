"""HTTP metrics: request count and latency by route template, method and status; ``/metrics``.

Routes are labelled by their template (``/api/v1/alerts/{alert_id}``), never the raw path, so
ids never become label values; unmatched paths share one label. ``/metrics`` needs an ops or
admin token unless ``metrics_public`` is set. Each scrape also counts the live tokens expiring
within 7 days (``em_tokens_expiring_7d``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from em_service.api.deps import bearer, get_caller, require
from em_service.api.errors import responses
from em_service.clock import wall_now
from em_service.store import tokens

REQUESTS = Counter("em_api_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "em_api_request_seconds",
    "Time to answer an HTTP request (streams: until they end)",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
UNMATCHED = "<unmatched>"
TOKENS_EXPIRING = Gauge(
    "em_tokens_expiring_7d", "Live API tokens that expire within 7 days (renew or replace them)"
)


class RequestMetrics:
    """Pure ASGI middleware (streams pass straight through) recording every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or UNMATCHED
            method = scope.get("method", "")
            REQUESTS.labels(method, label, str(status["code"])).inc()
            LATENCY.labels(method, label).observe(time.perf_counter() - start)


router = APIRouter(tags=["health"])


def _metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if request.app.state.settings.metrics_public:
        return
    # The one auth path: 401 without a valid token, 403 for roles other than ops and admin.
    caller = get_caller(request, request.app.state.store, credentials)
    require("ops", "admin")(request, caller)


@router.get(
    "/metrics",
    summary="Prometheus metrics (ops or admin token unless metrics_public)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **responses(401, 403),
    },
    dependencies=[Depends(_metrics_access)],
)
def metrics(request: Request) -> Response:
    settings = request.app.state.settings
    with request.app.state.store.read() as session:
        TOKENS_EXPIRING.set(
            tokens.count_expiring(session, now=wall_now(settings), within=timedelta(days=7))
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
