"""Alert store: re-delivery never duplicates; …_ended attaches; lifecycle steps with audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from em_service.store import Store, alerts, audit
from em_service.store.models import AlertEvent, AlertRow, AlertTransition, AuditEntry
from em_service.store.tokens import Caller
from tests.store.factories import alert, ended

OFFICER = Caller(name="officer-a", role="officer", caseload=frozenset({"off-1"}))


def _apply(store: Store, *messages) -> list:
    with store.write() as s:
        return [alerts.apply_alert(s, m).kind for m in messages]


def _count(store: Store, model) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_redelivered_alert_is_stored_once(store: Store) -> None:
    a = alert()
    assert _apply(store, a, a) == ["created", None]
    assert _apply(store, a) == [None]
    assert _count(store, AlertRow) == 1 and _count(store, AlertEvent) == 1


def test_ended_attaches_to_its_alert_once(store: Store) -> None:
    a = alert()
    end = ended(a)
    assert _apply(store, a, end, end) == ["created", "ended", None]
    with store.read() as s:
        row = s.get(AlertRow, a.alert_id)
    assert row.ended_alert_id == end.alert_id and row.episode_end == end.episode_end
    assert _count(store, AlertRow) == 1  # the ended message is an update, not a new alert


def test_orphan_ended_is_kept_then_attached(store: Store) -> None:
    a = alert()
    end = ended(a)
    assert _apply(store, end) == ["orphan_ended"]
    assert _apply(store, a) == ["created"]
    with store.read() as s:
        assert s.get(AlertRow, a.alert_id).ended_alert_id == end.alert_id
        kinds = s.scalars(select(AlertEvent.kind).order_by(AlertEvent.id)).all()
    assert kinds == ["created", "created", "ended"]


@pytest.mark.parametrize(
    ("steps", "refused_at"),
    [
        (["acknowledged", "closed"], None),
        (["closed"], None),  # closing straight from open is allowed
        (["acknowledged", "acknowledged"], 1),
        (["closed", "acknowledged"], 1),
        (["closed", "closed"], 1),
    ],
)
def test_lifecycle_transitions(store: Store, steps: list[str], refused_at: int | None) -> None:
    _apply(store, alert())
    for i, to in enumerate(steps):
        with store.write() as s:
            if i == refused_at:
                with pytest.raises(alerts.TransitionRefused):
                    alerts.transition(s, alert_id="alert-0001", to=to, caller=OFFICER, note="n")
                continue
            row = alerts.transition(s, alert_id="alert-0001", to=to, caller=OFFICER, note="n")
            assert row.status == to
    done = steps[: refused_at if refused_at is not None else len(steps)]
    with store.read() as s:
        history = alerts.transitions(s, "alert-0001")
        entries, _ = audit.list_entries(s, offender_id="off-1")
        assert audit.verify(s).ok
    assert [(t.to_status, t.actor, t.role) for t in history] == [
        (to, "officer-a", "officer") for to in done
    ]
    assert [e.action for e in reversed(entries)] == [
        "alert.acknowledge" if to == "acknowledged" else "alert.close" for to in done
    ]


@pytest.mark.parametrize("note", [None, "", "   "])
def test_close_needs_a_note(store: Store, note: str | None) -> None:
    _apply(store, alert())
    with store.write() as s, pytest.raises(alerts.TransitionRefused, match="note"):
        alerts.transition(s, alert_id="alert-0001", to="closed", caller=OFFICER, note=note)
    assert _count(store, AlertTransition) == 0 and _count(store, AuditEntry) == 0


def test_someone_elses_alert_is_unknown(store: Store) -> None:
    _apply(store, alert(offender_id="off-2"))
    with store.write() as s:
        assert (
            alerts.transition(s, alert_id="alert-0001", to="closed", caller=OFFICER, note="x")
            is None
        )
        assert alerts.get(s, "alert-0001", caller=OFFICER) is None


def test_list_filters_and_pages(store: Store) -> None:
    from datetime import timedelta

    from tests.store.factories import T0

    msgs = [
        alert(f"alert-{i:04d}", offender_id=f"off-{i % 3}", occurred_at=T0 + timedelta(minutes=i))
        for i in range(10)
    ]
    _apply(store, *msgs)
    with store.read() as s:
        page, total = alerts.list_alerts(s, only=frozenset({"off-1"}), limit=2, offset=0)
        assert total == 3 and [r.alert_id for r in page] == ["alert-0007", "alert-0004"]
        _, total = alerts.list_alerts(s, only=None, since=T0 + timedelta(minutes=8), limit=50)
        assert total == 2
        assert alerts.list_alerts(s, only=frozenset(), limit=5)[1] == 0
        events = alerts.events_after(s, after=3, only=frozenset({"off-0"}))
    assert [e.id for e, _ in events] == [4, 7, 10]
