"""Pacing by delivery time: as fast as possible, real time, or accelerated ×N.

A :class:`Pacer` maps simulated instants to wall-clock deadlines: the first instant it is asked
about is "now"; an instant ``dt`` later is due ``dt / speed`` seconds of wall time later.
"""

from __future__ import annotations

import asyncio
import re
import time


def parse_speed(text: str) -> float | None:
    """Return the speed factor for ``fast`` (None), ``realtime`` (1) or ``xN``/``Nx``/``N``.

    >>> parse_speed("fast"), parse_speed("realtime"), parse_speed("x60"), parse_speed("2.5x")
    (None, 1.0, 60.0, 2.5)
    """
    t = text.strip().lower()
    if t == "fast":
        return None
    if t in ("realtime", "real-time", "x1", "1"):
        return 1.0
    m = re.fullmatch(r"x?(\d+(?:\.\d+)?)x?", t)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"speed must be fast, realtime or xN (N > 0), not {text!r}")
    return float(m.group(1))


class Pacer:
    """Wall-clock deadlines for simulated instants (``speed`` None = no waiting)."""

    def __init__(self, speed: float | None, *, clock=time.monotonic) -> None:
        self.speed = speed
        self._clock = clock
        self._origin: tuple[float, float] | None = None

    def delay_s(self, sim_t_s: float) -> float:
        """Return how long to wait before ``sim_t_s`` is due (<= 0: due now)."""
        if self.speed is None:
            return 0.0
        now = self._clock()
        if self._origin is None:
            self._origin = (sim_t_s, now)
        t0, w0 = self._origin
        return w0 + (sim_t_s - t0) / self.speed - now

    async def wait(self, sim_t_s: float) -> None:
        """Sleep until ``sim_t_s`` is due."""
        delay = self.delay_s(sim_t_s)
        if delay > 0.001:
            await asyncio.sleep(delay)

    def wall_span_s(self, sim_span_s: float) -> float:
        """Return the wall time that ``sim_span_s`` of simulated time takes."""
        return 0.0 if self.speed is None else sim_span_s / self.speed
