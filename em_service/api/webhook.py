"""Webhook outlet: POST each new or changed alert to configured receivers, signed, with retries.

Each target (``settings.webhooks``) follows the ``alert_events`` outbox with its own cursor in
the database, in its own task: a slow or failing receiver never blocks the alert store, the
API or the other receivers. The body is the same JSON as an SSE event (no location). A target
may take only some event kinds; ``EM_ESCALATION_WEBHOOK_URL`` adds the duty channel ``duty``,
which gets only ``escalated`` events.

Signature: ``X-EM-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>." + body)>`` with
``X-EM-Timestamp`` (unix seconds) and ``X-EM-Event-Id``; receivers recompute it with
:func:`verify_signature` and refuse stale timestamps (replay). A failed POST is retried with
exponential backoff; after ``webhook_max_attempts`` the event is recorded in
``outlet_failures`` and counted in ``em_webhook_failures_total`` — never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time

import anyio
import httpx
from prometheus_client import Counter

from em_service.api.schemas import AlertEventOut
from em_service.api.views import alert_summary
from em_service.clock import wall_now
from em_service.settings import Settings, WebhookTarget
from em_service.store import Store, alerts, tokens
from em_service.store.models import AlertEvent, AlertRow, OutletCursor, OutletFailure

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-EM-Signature"
TIMESTAMP_HEADER = "X-EM-Timestamp"
EVENT_HEADER = "X-EM-Event-Id"
_BATCH = 100

DELIVERED = Counter("em_webhook_deliveries_total", "Alert events delivered", ["target"])
ATTEMPT_FAILURES = Counter(
    "em_webhook_attempt_failures_total", "Webhook POSTs that failed (will retry)", ["target"]
)
GIVEN_UP = Counter(
    "em_webhook_failures_total", "Alert events given up after every retry", ["target"]
)


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """Return the ``X-EM-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    key: bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Return True if ``signature`` is valid for ``body`` and ``timestamp`` is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(key, ts, body), signature)


def _cursor_name(target: WebhookTarget) -> str:
    return f"webhook:{target.name}"


class WebhookOutlet:
    """One delivery task per configured target."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._tasks: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None

    def _key(self, target: WebhookTarget) -> bytes | None:
        secret = target.secret or self.settings.webhook_secret
        return secret.get_secret_value().encode() if secret else None

    def start(self) -> None:
        """Start delivering (no-op without targets)."""
        targets = self.settings.webhook_targets()
        if not targets:
            return
        self._client = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s)
        for target in targets:
            if self._key(target) is None:
                log.error(
                    "webhook %s has no signing key (EM_WEBHOOK_SECRET): not started", target.name
                )
                continue
            self._tasks.append(asyncio.get_running_loop().create_task(self._run(target)))

    async def stop(self) -> None:
        """Stop every delivery task and close the HTTP client."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- database side (run in threads) --------------------------------------------------

    def _load_cursor(self, target: WebhookTarget) -> int:
        """Return the target's cursor; a new target starts at the current head (no replay)."""
        with self.store.write() as session:
            row = session.get(OutletCursor, _cursor_name(target))
            if row is None:
                row = OutletCursor(
                    name=_cursor_name(target), last_event_id=alerts.last_event_id(session)
                )
                session.add(row)
            return row.last_event_id

    def _save_cursor(self, target: WebhookTarget, event_id: int) -> None:
        with self.store.write() as session:
            session.get(OutletCursor, _cursor_name(target)).last_event_id = event_id

    def _record_failure(
        self, target: WebhookTarget, event_id: int, attempts: int, error: str
    ) -> None:
        with self.store.write() as session:
            session.add(
                OutletFailure(
                    outlet=_cursor_name(target),
                    event_id=event_id,
                    attempts=attempts,
                    last_error=error[:2000],
                    failed_at=wall_now(),
                )
            )

    def _fetch(
        self, target: WebhookTarget, after: int
    ) -> tuple[list[tuple[AlertEvent, AlertRow]], int]:
        """Return the target's next events after ``after`` and the outbox head (one snapshot)."""
        with self.store.read() as session:
            head = alerts.last_event_id(session)
            only: set[str] | None = None
            if target.principal or target.role:
                only = tokens.caseload_offenders(
                    session, principal=target.principal, role=target.role
                )
            if target.offender_ids:
                only = set(target.offender_ids) if only is None else only & set(target.offender_ids)
            events = alerts.events_after(
                session,
                after=after,
                only=None if only is None else frozenset(only),
                limit=_BATCH,
                kinds=frozenset(target.kinds) or None,
            )
        return events, head

    # --- delivery ------------------------------------------------------------------------

    async def deliver(self, target: WebhookTarget, event: AlertEvent, row: AlertRow) -> bool:
        """POST one event with retries; return True once the receiver answered 2xx."""
        body = (
            AlertEventOut(
                event_id=event.id,
                kind=event.kind,
                level=event.level,
                at=event.at,
                alert=alert_summary(row),
            )
            .model_dump_json()
            .encode()
        )
        key = self._key(target) or b""
        delay, error = self.settings.webhook_backoff_initial_s, ""
        for attempt in range(1, self.settings.webhook_max_attempts + 1):
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(key, ts, body),
                EVENT_HEADER: str(event.id),
            }
            try:
                assert self._client is not None
                response = await self._client.post(target.url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    DELIVERED.labels(target.name).inc()
                    return True
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            ATTEMPT_FAILURES.labels(target.name).inc()
            if attempt < self.settings.webhook_max_attempts:
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, self.settings.webhook_backoff_max_s)
        log.error("webhook %s gave up on event %d: %s", target.name, event.id, error)
        await anyio.to_thread.run_sync(
            self._record_failure, target, event.id, self.settings.webhook_max_attempts, error
        )
        GIVEN_UP.labels(target.name).inc()  # counted once recorded for replay, not before
        return False

    async def _run(self, target: WebhookTarget) -> None:
        cursor = await anyio.to_thread.run_sync(self._load_cursor, target)
        while True:
            try:
                batch, head = await anyio.to_thread.run_sync(self._fetch, target, cursor)
                for event, row in batch:
                    await self.deliver(target, event, row)
                    cursor = event.id
                    await anyio.to_thread.run_sync(self._save_cursor, target, cursor)
                if len(batch) < _BATCH:
                    # Nothing more for this target up to the head: skip others' events.
                    if head > cursor:
                        cursor = head
                        await anyio.to_thread.run_sync(self._save_cursor, target, cursor)
                    await asyncio.sleep(self.settings.webhook_poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook %s: delivery loop failed; retrying", target.name)
                await asyncio.sleep(self.settings.webhook_backoff_max_s)


__all__ = ["WebhookOutlet", "sign", "verify_signature"]
