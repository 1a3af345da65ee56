"""``/metrics``, ``/healthz`` and ``/readyz`` on the metrics port of the worker and the archiver.

``/readyz`` answers 200 when every check is ``ok``, else 503, with one line per check saying
what the process waits for (``{"status": "waiting", "checks": {"conditions": "loading", …}}``).
The lines are fixed words, never error text: the port is unauthenticated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

Checks = Callable[[], dict[str, str]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
        pass


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


def serve(port: int, addr: str, checks: Checks) -> WSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``addr:port`` (a daemon thread)."""
    httpd = make_server(addr, port, _app(checks), _Server, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="health").start()
    return httpd
