"""Reject an API query string that names a parameter twice (``?actor=a&actor=b``).

FastAPI quietly keeps the last value of a single-valued parameter, so a caller (or a proxy that
appends parameters) can never be sure which filter was applied; no ``/api`` parameter is a list,
so a repeated one is a 422 with the parameter named, before any route or body is read.
"""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send


class RejectRepeatedQuery:
    """ASGI middleware: 422 for ``/api/…`` requests whose query repeats a parameter."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            query = scope.get("query_string", b"").decode("latin-1")
            names = Counter(k for k, _ in parse_qsl(query, keep_blank_values=True))
            repeated = sorted(k for k, n in names.items() if n > 1)
            if repeated:
                detail = "; ".join(f"query.{k}: given more than once" for k in repeated)
                body = json.dumps({"detail": detail}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 422,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
