"""Small test helpers: unique names and polling (never bare sleeps)."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def unique_name(prefix: str = "t") -> str:
    """Return ``prefix`` with a random suffix, e.g. for topics and consumer groups of one test."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(
    predicate: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.1, what: str = ""
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
        time.sleep(interval_s)


async def wait_for_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout_s: float = 10.0,
    interval_s: float = 0.1,
    what: str = "",
) -> T:
    """Like :func:`wait_for` inside an event loop; ``predicate`` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
        await asyncio.sleep(interval_s)
