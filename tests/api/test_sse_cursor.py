"""The SSE cursor never falls behind an event it has sent.

On PostgreSQL (read committed) the stream's two queries — the outbox head, then the caller's
events after the cursor — see two snapshots; events committed between them lie beyond the head
it read. The cursor was then set to that head, and the next read sent those events again (two
API processes in the scale test sent two officers the same alerts twice). Here the head is read
as it was before the later events committed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from em_service.api import alert_stream
from em_service.store import alerts
from em_service.store.tokens import Caller
from tests.database import Database
from tests.store.factories import T0, alert


def test_events_beyond_a_stale_head_are_sent_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = database.store()
    try:
        with store.write() as s:
            alerts.apply_alert(s, alert("al-first", occurred_at=T0))
        with store.read() as s:
            stale = alerts.last_event_id(s)
        with store.write() as s:
            for i in range(3):
                alerts.apply_alert(s, alert(f"al-later-{i}", occurred_at=T0 + timedelta(minutes=i)))
        monkeypatch.setattr(alerts, "last_event_id", lambda _session: stale)
        caller = Caller("officer-1", "officer", frozenset({"off-1"}))

        sent, cursor = alert_stream._fetch(store, stale, caller)
        assert [e.data.alert.alert_id for e in sent] == [f"al-later-{i}" for i in range(3)]
        again, cursor_again = alert_stream._fetch(store, cursor, caller)
        assert again == [] and cursor_again == cursor == int(sent[-1].id)
    finally:
        store.dispose()
