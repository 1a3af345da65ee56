"""A real XYZ tile server for tests: ``http.server`` in a thread on 127.0.0.1 (a free port),
serving PNG tiles made with the project's own PNG writer, or a chosen failure."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from em_service.scenes import mapimage


def tile_colour(x: int, y: int) -> tuple[int, int, int]:
    """The solid colour of tile x, y: neighbours differ."""
    return (x * 37 % 256, y * 53 % 256, (x + y) % 2 * 120 + 40)


def tile_png(x: int, y: int, size: int = 256) -> bytes:
    return mapimage.Canvas(size, size, tile_colour(x, y)).png()


@dataclass
class TileServer:
    """``mode``: "ok" (tiles), "500", "garbage" (not a PNG), "truncated" (a cut PNG)."""

    mode: str = "ok"
    port: int = 0
    served: dict[tuple[int, int, int], bytes] = field(default_factory=dict)
    make: Callable[[int, int], bytes] = tile_png

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tiles/{{z}}/{{x}}/{{y}}.png"


@contextmanager
def serve(mode: str = "ok") -> Iterator[TileServer]:
    """Run a tile server until the block ends."""
    state = TileServer(mode)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.removesuffix(".png").split("/")
            z, x, y = (int(p) for p in parts[-3:])
            body = state.make(x, y)
            if state.mode == "500":
                self.send_error(500)
                return
            if state.mode == "garbage":
                body = b"<html>not a tile</html>"
            elif state.mode == "truncated":
                body = body[: len(body) // 2]
            else:
                state.served[(z, x, y)] = body
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """A tile URL on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"
