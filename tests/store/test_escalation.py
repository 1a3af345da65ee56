"""Escalation of unacknowledged critical alerts: levels at after_s and 2×after_s, only while
open, never for suppressed or non-critical alerts, each level once (also from racing writers)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from em_service.store import Store, alerts, audit, escalation
from em_service.store.models import AlertEvent, AlertRow, AuditEntry
from em_service.store.tokens import Caller
from tests.store.factories import T0, alert

OFFICER = Caller(name="officer-a", role="officer", caseload=frozenset({"off-1"}))
AFTER = 600.0


def _store_alerts(store: Store, *messages) -> None:
    with store.write() as s:
        for m in messages:
            alerts.apply_alert(s, m, now=T0)


def _escalations(store: Store) -> list[tuple[str, int]]:
    with store.read() as s:
        return [
            (e.alert_id, e.level)
            for e in s.scalars(
                select(AlertEvent).where(AlertEvent.kind == "escalated").order_by(AlertEvent.id)
            )
        ]


def _run(store: Store, after_s: float) -> list[tuple[str, int]]:
    raised = escalation.run(store, now=T0 + timedelta(seconds=after_s), after_s=AFTER)
    return [(e.alert_id, e.level) for e in raised]


def test_levels_once_each_and_only_for_open_critical_unsuppressed(store: Store) -> None:
    _store_alerts(
        store,
        alert("alert-crit-open"),  # exclusion_breach: critical
        alert("alert-crit-ackd"),
        alert("alert-warn-open", type="battery_low"),  # warning tier
        alert(
            "alert-crit-supp",
            details={"suppressed": {"suspension_id": "s-1", "reason": "funeral"}},
        ),
    )
    assert _run(store, AFTER - 1) == []  # not yet due
    with store.write() as s:
        alerts.transition(
            s, alert_id="alert-crit-ackd", to="acknowledged", caller=OFFICER, note=None, now=T0
        )
    assert _run(store, AFTER) == [("alert-crit-open", 1)]
    assert _run(store, AFTER + 30) == []  # level 1 happens once
    assert _run(store, 2 * AFTER - 1) == []
    assert _run(store, 2 * AFTER) == [("alert-crit-open", 2)]
    assert _run(store, 5 * AFTER) == []  # no level 3
    assert _escalations(store) == [("alert-crit-open", 1), ("alert-crit-open", 2)]
    with store.read() as s:
        row = s.get(AlertRow, "alert-crit-open")
        assert (row.escalation_level, row.status) == (2, "open")
        assert row.escalated_at == T0 + timedelta(seconds=2 * AFTER)
        actions = s.scalars(
            select(AuditEntry.detail_json).where(AuditEntry.action == "alert.escalate")
        ).all()
        assert len(actions) == 2
        assert audit.verify(s).ok


def test_a_late_run_raises_both_levels_in_order(store: Store) -> None:
    _store_alerts(store, alert("alert-crit-late", type="curfew_breach"))
    assert _run(store, 3 * AFTER) == [("alert-crit-late", 1), ("alert-crit-late", 2)]
    assert _run(store, 3 * AFTER) == []


def test_acknowledged_after_level_1_gets_no_level_2(store: Store) -> None:
    _store_alerts(store, alert("alert-crit-one", type="strap_tamper"))
    assert _run(store, AFTER) == [("alert-crit-one", 1)]
    with store.write() as s:
        alerts.transition(
            s, alert_id="alert-crit-one", to="acknowledged", caller=OFFICER, note=None, now=T0
        )
    assert _run(store, 2 * AFTER) == []


def test_racing_escalators_raise_each_level_once(store: Store) -> None:
    _store_alerts(store, *(alert(f"alert-race-{i:04d}") for i in range(20)))
    raised: list[list] = []
    barrier = threading.Barrier(3)

    def one() -> None:
        barrier.wait()
        raised.append(_run(store, 2 * AFTER))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    together = sorted(x for r in raised for x in r)
    expected = sorted((f"alert-race-{i:04d}", lvl) for i in range(20) for lvl in (1, 2))
    assert together == expected  # every (alert, level) raised by exactly one of them
    assert sorted(_escalations(store)) == expected
    with store.read() as s:
        assert audit.verify(s).ok
