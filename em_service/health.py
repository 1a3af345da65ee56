"""``/metrics``, ``/healthz`` and ``/readyz`` on the metrics port of the worker and the archiver.

``/readyz`` answers 200 when every check is ``ok``, else 503, with one line per check saying
what the process waits for (``{"status": "waiting", "checks": {"conditions": "loading", …}}``).
The lines are fixed words, never error text: the port is unauthenticated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from wsgiref.simple_server import make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

Checks = Callable[[], dict[str, str]]


class Readiness:
    """Named checks set from the service's own code (thread-safe); unset ones are ``waiting``."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._checks = dict.fromkeys(names, "waiting")

    def set(self, name: str, state: str = "ok") -> None:
        with self._lock:
            self._checks[name] = state

    def __call__(self) -> dict[str, str]:
        with self._lock:
            return dict(self._checks)


def _app(checks: Checks):
    metrics = make_wsgi_app()

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return metrics(environ, start_response)
        if path == "/healthz":
            code, body = "200 OK", {"status": "ok"}
        else:
            try:
                state = checks()
            except Exception:  # a check that cannot answer is not ready
                state = {"checks": "unavailable"}
            ready = all(v == "ok" for v in state.values())
            code = "200 OK" if ready else "503 Service Unavailable"
            body = {"status": "ok" if ready else "waiting", "checks": state}
        data = json.dumps(body).encode()
        start_response(
            code, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    return app


def serve(port: int, addr: str, checks: Checks) -> ThreadingWSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``addr:port`` (a daemon thread)."""
    httpd = make_server(addr, port, _app(checks), ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="health").start()
    return httpd
