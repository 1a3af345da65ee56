"""Every alert type has exactly one tier; episode ends are info."""

from __future__ import annotations

import pytest

from em_service.contracts import ALERT_TYPES
from em_service.rules.tiers import TIER_OF, TIERS, rank, tier


def test_every_alert_type_has_a_tier_and_nothing_else() -> None:
    assert set(TIER_OF) == set(ALERT_TYPES)
    assert set(TIER_OF.values()) <= set(TIERS)


def test_ends_are_info_and_the_critical_ones() -> None:
    assert all(tier(t) == "info" for t in ALERT_TYPES if t.endswith("_ended"))
    assert tier("strap_tamper") == "critical" and tier("location_failure") == "urgent"
    assert rank("exclusion_breach") < rank("attendance_late") < rank("attendance_kept")
    with pytest.raises(KeyError):
        tier("sneezed")
