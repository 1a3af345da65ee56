"""The service's clocks: the wall clock (aware UTC) and, for replays, the stream's event time.

Every "now" the service reads comes from :func:`wall_now`: the machine's clock shifted by
``EM_WALL_CLOCK_OFFSET_S`` (0 in production; tests set it to run the real processes as if it
were another date). What a rule compares with "now" in a replay (``EM_RULE_CLOCK=event``) is
the stream's event-time watermark instead (:func:`rule_now`), so no result depends on the date
a replay runs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from em_service.settings import Settings, get_settings


def wall_now(settings: Settings | None = None) -> datetime:
    """The wall clock, aware UTC, shifted by ``wall_clock_offset_s`` (default: process settings)."""
    offset = (settings or get_settings()).wall_clock_offset_s
    now = datetime.now(UTC)
    return now + timedelta(seconds=offset) if offset else now


def rule_now(settings: Settings, wall: datetime, watermark: datetime | None) -> datetime | None:
    """The rule clock: ``wall`` in production, the event-time ``watermark`` in a replay
    (``EM_RULE_CLOCK=event``; None before the stream's first event: nothing can be judged)."""
    return wall if settings.rule_clock == "wall" else watermark


def age_limit(
    settings: Settings, now: datetime, watermark: datetime | None
) -> tuple[datetime, float]:
    """Return the clock a reading's absurd age is judged by, and the limit in s: the wall
    clock ``now`` in production; in a replay the stream's event-time ``watermark`` (no check
    before the stream's first reading), so replaying old data is not refused as too old."""
    clock = rule_now(settings, now, watermark)
    return (now, math.inf) if clock is None else (clock, settings.max_past_age_s)
