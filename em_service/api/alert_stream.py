"""SSE outlet: ``GET /api/v1/alerts/stream`` — new and changed alerts as Server-Sent Events.

Event ids are the ids of the ``alert_events`` outbox, so a client that reconnects with
``Last-Event-ID`` gets exactly what it missed. One :class:`AlertEventHub` per app polls the
outbox head every ``sse_poll_interval_s`` and wakes the streams; each stream then reads only its
caller's events (an officer's caseload). Events carry no location.

A stream lives on borrowed authority: every ``sse_recheck_interval_s`` (30 s) it authenticates
the request again (token or console session) and ends when the caller is gone or their role or
caseload changed; it ends anyway after ``sse_max_lifetime_s``. Clients reconnect with
``Last-Event-ID`` (browsers do so by themselves) and lose nothing, or get a 401.

A resume id (``Last-Event-ID`` or ``after``) is a decimal integer of at most 19 digits, 0 to
2^63 − 1 (SQLite's integer range); anything else is refused with 422 before the stream starts.
An id beyond the newest event (another database, a client's invention) resumes from the newest:
the stream then carries new events instead of waiting for an id that may never come.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import FastAPI, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import Gauge
from pydantic import BeforeValidator

from em_service.api.deps import Officer, StoreDep, recheck_caller, visible
from em_service.api.schemas import AlertEventOut
from em_service.api.views import alert_summary
from em_service.store import Store, alerts
from em_service.store.tokens import Caller

__all__ = ["MAX_EVENT_ID", "AlertEventHub", "EventSourceResponse", "hub", "stream_alerts"]
_BATCH = 200
_IDLE_WAKE_S = 15.0
MAX_EVENT_ID = 2**63 - 1  # the largest SQLite integer
_DIGITS = re.compile(r"[0-9]{1,19}")


def _event_id_text(value: object) -> object:
    """Accept only plain decimal digits (no sign, spaces, ``_`` or ``.0``), at most 19."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError(f"an event id is a decimal integer from 0 to {MAX_EVENT_ID}")
    return value


#: A resume id: plain decimal, 0 … 2^63 − 1.
EventId = Annotated[int, BeforeValidator(_event_id_text)]
LAST_POLL = Gauge(
    "em_sse_hub_last_poll_timestamp_seconds",
    "Unix time the SSE hub last read the alert outbox (once a stream has started it)",
)


class AlertEventHub:
    """Watches the outbox head and wakes waiting streams when it moves."""

    def __init__(self, store: Store, poll_interval_s: float) -> None:
        self.store = store
        self.poll_interval_s = poll_interval_s
        self.latest = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._poke = asyncio.Event()

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            latest = await anyio.to_thread.run_sync(self._read_latest)
            LAST_POLL.set_to_current_time()
            if latest > self.latest:
                self.latest = latest
                async with self._changed:
                    self._changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.poll_interval_s)
            self._poke.clear()

    def _read_latest(self) -> int:
        with self.store.read() as session:
            return alerts.last_event_id(session)

    def poke(self) -> None:
        """Look now (e.g. after this process changed an alert) instead of at the next poll."""
        self._poke.set()

    async def wait_beyond(self, event_id: int, timeout_s: float) -> None:
        """Return when the outbox head passes ``event_id`` or after ``timeout_s``."""
        self._ensure_polling()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: self.latest > event_id)

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def hub(app: FastAPI) -> AlertEventHub:
    """Return the app's hub (created on first use)."""
    if getattr(app.state, "alert_hub", None) is None:
        settings = app.state.settings
        app.state.alert_hub = AlertEventHub(app.state.store, settings.sse_poll_interval_s)
    return app.state.alert_hub


def _fetch(store: Store, after: int, caller: Caller) -> tuple[list[ServerSentEvent], int]:
    with store.read() as session:
        head = alerts.last_event_id(session)
        rows = alerts.events_after(session, after=after, only=visible(caller), limit=_BATCH)
        events = [
            ServerSentEvent(
                id=str(event.id),
                event="alert",
                data=AlertEventOut(
                    event_id=event.id,
                    kind=event.kind,
                    level=event.level,
                    at=event.at,
                    alert=alert_summary(row),
                ),
            )
            for event, row in rows
        ]
    # Nothing of ours up to the head: skip to it, so officers do not rescan others' events.
    # On PostgreSQL the two queries see two snapshots: events committed between them lie
    # beyond ``head`` and were sent now (the cursor stayed at the head: sent twice).
    last = int(events[-1].id) if events else after
    return events, last if len(events) == _BATCH else max(head, last)


async def stream_alerts(
    request: Request,
    caller: Officer,
    store: StoreDep,
    last_event_id: Annotated[
        EventId | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_EVENT_ID,
            description="Resume after this event id (decimal, 0 to 2^63 − 1)",
        ),
    ] = None,
    after: Annotated[
        EventId | None,
        Query(
            ge=0,
            le=MAX_EVENT_ID,
            description="Same as Last-Event-ID, for clients without headers",
        ),
    ] = None,
    max_s: Annotated[
        float | None,
        Query(gt=0, le=86400, description="Close the stream after this many seconds"),
    ] = None,
) -> AsyncIterator[AlertEventOut]:
    """Stream alert events for the caller's caseload; without a resume id, only new ones."""
    the_hub = hub(request.app)
    cursor = last_event_id if last_event_id is not None else after
    head = await anyio.to_thread.run_sync(the_hub._read_latest)
    cursor = head if cursor is None else min(cursor, head)
    settings = request.app.state.settings
    started = time.monotonic()
    lifetime = (
        settings.sse_max_lifetime_s if max_s is None else min(max_s, settings.sse_max_lifetime_s)
    )
    deadline = started + lifetime
    next_check = started + settings.sse_recheck_interval_s
    while True:
        now = time.monotonic()
        if now >= next_check:
            if await anyio.to_thread.run_sync(recheck_caller, request) != caller:
                return  # token revoked, session ended, role or caseload changed
            next_check = now + settings.sse_recheck_interval_s
        events, cursor = await anyio.to_thread.run_sync(_fetch, store, cursor, caller)
        for event in events:
            yield event  # type: ignore[misc]
        if len(events) == _BATCH:
            continue
        now = time.monotonic()
        if deadline - now <= 0:
            return
        wait = min(deadline - now, _IDLE_WAKE_S, max(next_check - now, 0.0))
        await the_hub.wait_beyond(cursor, wait)
