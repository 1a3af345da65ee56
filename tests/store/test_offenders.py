"""Offender status comes from open episodes; device assignments follow conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from em_service.store import Store, alerts, offenders
from tests.store.factories import T0, alert, conditions, ended


@pytest.mark.parametrize(
    ("messages", "status", "open_types"),
    [
        ([], "compliant", []),
        ([alert("a-excl-01")], "in_breach", ["exclusion_breach"]),
        ([alert("a-excl-01"), ended(alert("a-excl-01"))], "compliant", []),
        ([alert("a-silent-1", type="device_silent")], "silent", ["device_silent"]),
        (
            [alert("a-silent-1", type="device_silent"), alert("a-curf-01", type="curfew_breach")],
            "in_breach",
            ["curfew_breach", "device_silent"],
        ),
        ([alert("a-batt-01", type="battery_low")], "compliant", []),  # not an episode
    ],
)
def test_status_from_open_episodes(store: Store, messages, status, open_types) -> None:
    with store.write() as s:
        offenders.put_conditions(s, conditions=conditions(), changed_at=T0)
        for m in messages:
            alerts.apply_alert(s, m)
    with store.read() as s:
        state = offenders.state(s, offender_id="off-1")
    assert state.status == status
    assert sorted(e.type for e in state.open_episodes) == sorted(open_types)


def test_closing_an_alert_does_not_end_its_episode(store: Store) -> None:
    from em_service.store.tokens import Caller

    officer = Caller("officer-a", "officer", frozenset({"off-1"}))
    with store.write() as s:
        alerts.apply_alert(s, alert())
        alerts.transition(s, alert_id="alert-0001", to="closed", caller=officer, note="seen")
    with store.read() as s:
        state = offenders.state(s, offender_id="off-1")
    assert state.status == "in_breach" and state.open_alerts == 0


def test_alerts_create_unknown_offenders(store: Store) -> None:
    with store.write() as s:
        alerts.apply_alert(s, alert(offender_id="off-new"))
    with store.read() as s:
        page, total = offenders.list_offenders(s, only=None, limit=10, offset=0)
    assert total == 1 and page[0].offender_id == "off-new" and page[0].device_ids == []


def test_device_changes_and_tombstones(store: Store) -> None:
    hour = timedelta(hours=1)
    with store.write() as s:
        offenders.put_conditions(
            s, conditions=conditions("off-1", ["tag-1", "tag-2"]), changed_at=T0
        )
        offenders.put_conditions(s, conditions=conditions("off-1", ["tag-2"]), changed_at=T0 + hour)
        with pytest.raises(offenders.DeviceConflict, match="tag-2"):
            offenders.put_conditions(
                s, conditions=conditions("off-2", ["tag-2"]), changed_at=T0, strict_devices=True
            )
        assert offenders.current_devices(s, "off-1") == ["tag-2"]
        offenders.remove_conditions(s, offender_id="off-1", changed_at=T0 + 2 * hour)
        assert offenders.current_devices(s, "off-1") == []
        assert offenders.exists(s, "off-1")
