"""Issue 13 finding 1: bodies are limited and the caller authenticated before a byte of the body
is read (real uvicorn, raw sockets: we count what the server took before it answered)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from em_service.api.main import create_app
from tests.api.conftest import make_api
from tests.api.live_server import serve
from tests.database import Database

BIG = 50 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def port(tmp_path: Path, sqlite_db: Database) -> Iterator[tuple[int, dict[str, str]]]:
    gen = make_api(tmp_path, sqlite_db, None)
    api = next(gen)  # seeded database and tokens; serve a second app on the same database
    app = create_app(api.settings)
    with serve(app) as p:
        yield p, api.tokens
    gen.close()


def _post(port: int, path: str, headers: dict[str, str], chunked: bool) -> tuple[int, int, float]:
    """Send up to 50 MB to ``path``; return (status, bytes sent before the answer, seconds)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
    head = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    answered = threading.Event()

    def pump() -> None:
        nonlocal sent
        piece = b"[" + b"1," * (CHUNK // 2 - 1)
        frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        try:
            while sent < BIG and not answered.is_set():
                sock.sendall(frame)
                sent += len(piece)
        except OSError:
            pass

    started = time.monotonic()
    writer = threading.Thread(target=pump, daemon=True)
    writer.start()
    reply = b""
    while b"\r\n" not in reply:
        data = sock.recv(4096)
        if not data:
            break
        reply += data
    answered.set()
    took = time.monotonic() - started
    at_answer = sent
    writer.join(10)
    sock.close()
    return int(reply.split(b" ")[1]), at_answer, took


@pytest.mark.parametrize("chunked", [False, True])
def test_unauthenticated_big_post_is_refused_without_reading_the_body(port, chunked) -> None:
    p, _ = port
    status, sent, took = _post(p, "/api/v1/scenes", {}, chunked)
    assert status in (401, 413)
    assert took < 2.0
    # The kernel's socket buffers take a few MB at most; the server read none of the 50 MB.
    assert sent < 8 * 1024 * 1024


def test_unknown_token_is_401_before_the_body(port) -> None:
    p, _ = port
    status, sent, _ = _post(p, "/api/v1/scenes", {"Authorization": "Bearer em_nope"}, True)
    assert status == 401
    assert sent < 8 * 1024 * 1024


def test_authenticated_chunked_body_over_the_limit_is_413(port) -> None:
    p, made = port
    auth = {"Authorization": f"Bearer {made['investigator']}"}
    status, sent, took = _post(p, "/api/v1/scenes", auth, True)
    assert status == 413
    assert took < 2.0
    assert sent < 8 * 1024 * 1024


def test_declared_length_over_the_conditions_limit_is_413(port) -> None:
    p, made = port
    auth = {"Authorization": f"Bearer {made['admin']}"}
    status, sent, _ = _post(p, "/api/v1/offenders/off-1/conditions", auth, False)
    assert status == 413
    assert sent < 8 * 1024 * 1024


def test_small_bodies_still_work(api) -> None:
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/acknowledge",
        json={"note": "on it"},
        headers=api.headers("officer"),
    )
    assert r.status_code == 200, r.text
    r = api.client.post("/api/v1/alerts/alert-off-1/acknowledge", json={"note": "x"})
    assert r.status_code == 401
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/close",
        json={"note": "x" * 70_000},
        headers=api.headers("officer"),
    )
    assert r.status_code == 413
