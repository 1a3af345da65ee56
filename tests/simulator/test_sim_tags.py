"""Tags: store-and-forward bursts, sequence numbers, battery, alcohol curves and tamper."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import Simulation
from simulator.alcohol import THRESHOLD_G_DL
from simulator.summary import out_of_order
from tests.simulator.conftest import script_of, truth_of


def _delivered(sim: Simulation, person: int):
    """Return (ts, delivered, kind) of one GPS tag's readings in delivery order."""
    f, e = sim.fixes, sim.events
    mf, me = f.dev == person, e.dev == person
    ts = np.concatenate([f.ts_s[mf], e.ts_s[me]])
    got = np.concatenate([f.delivered_s[mf], e.delivered_s[me]])
    order = np.argsort(got)
    return ts[order], got[order]


def test_store_and_forward_burst_arrives_out_of_order(sim: Simulation) -> None:
    script = script_of(sim, "late_burst")
    person = script.person.index
    ((o0, o1),) = script.outages
    ts, got = _delivered(sim, person)
    # The live fix at the reconnection instant arrives first, then the backlog, oldest first.
    live = int(np.flatnonzero(ts == o1)[0])
    backlog = np.flatnonzero((ts >= o0) & (ts < o1))
    assert backlog.size >= 10 and np.all(backlog > live)
    assert np.all(np.diff(ts[backlog]) > 0)
    assert np.all(got[backlog] > o1)
    assert np.any(np.diff(ts) < 0)  # delivery order differs from event order
    # The readings file (delivery order) shows the same thing for this device.
    kind, index = sim.delivery_order()
    gps = index[kind == 0]
    mine = gps[sim.fixes.dev[gps] == person]
    assert np.any(np.diff(sim.fixes.ts_s[mine]) < 0)
    assert out_of_order(sim.fixes.dev, sim.fixes.ts_s, sim.fixes.delivered_s) >= backlog.size
    (breach,) = truth_of(sim, "late_burst", "exclusion_breach")
    assert breach.late and breach.details["detect_fix_delay_s"] > 60


def test_sequence_numbers_follow_event_time(sim: Simulation) -> None:
    f, e = sim.fixes, sim.events
    dev = np.concatenate([f.dev, e.dev])
    ts = np.concatenate([f.ts_s, e.ts_s])
    kind = np.concatenate([np.zeros(len(f)), np.ones(len(e))])
    seq = np.concatenate([sim.fix_seq, sim.event_seq])
    order = np.lexsort((kind, ts, dev))
    d = dev[order]
    expected = np.arange(len(d)) - np.searchsorted(d, d, side="left")
    assert np.array_equal(seq[order], expected)


def test_silent_tags_record_nothing(sim: Simulation) -> None:
    for kind in ("curfew_silent", "device_silent"):
        script = script_of(sim, kind)
        ((a, b),) = script.silences
        ts, _got = _delivered(sim, script.person.index)
        assert not np.any((ts >= a) & (ts < b))
    (unverified,) = truth_of(sim, "curfew_silent", "curfew_unverified")
    assert unverified.severity == "high" and unverified.timing == "processing"
    assert unverified.curfew_id is not None
    (silent,) = truth_of(sim, "device_silent", "device_silent")
    assert silent.episode_end is not None


def test_battery_low_crosses_15_percent(sim: Simulation) -> None:
    script = script_of(sim, "battery_low")
    person = script.person.index
    (rec,) = truth_of(sim, "battery_low", "battery_low")
    assert rec.occurred_at.timestamp() == script.battery_low_at_s and rec.severity == "medium"
    f = sim.fixes
    m = f.dev == person
    before = f.battery_pct[m][f.ts_s[m] < script.battery_low_at_s - 3600]
    after = f.battery_pct[m][
        (f.ts_s[m] > script.battery_low_at_s + 60) & (f.ts_s[m] < script.battery_low_at_s + 1200)
    ]
    assert before[-1] > 15 >= after[0]
    plan = sim.device_plans[person]
    lows = [t for t, k, _d in plan.events if k == "battery_low"]
    assert script.battery_low_at_s in lows
    level = np.interp(script.battery_low_at_s, plan.battery_t_s, plan.battery_pct)
    assert level == pytest.approx(15.0, abs=0.01)


def test_strap_tamper_is_one_high_alert(sim: Simulation) -> None:
    (rec,) = truth_of(sim, "strap_tamper", "strap_tamper")
    assert rec.severity == "high" and not rec.optional
    (restored,) = truth_of(sim, "strap_tamper", "strap_restored")
    assert restored.optional


def _alcohol(sim: Simulation, kind: str):
    person = script_of(sim, kind).person.index
    a = sim.alcohol
    m = a.dev == person
    return (
        a.ts_s[m].astype(float),
        a.tac_g_dl[m],
        a.true_tac_g_dl[m],
        a.skin_temp_c[m],
        a.ir_value[m],
        a.ir_contact[m],
    )


def test_drinking_curve_rises_plausibly_and_eliminates_at_0015_to_0020(sim: Simulation) -> None:
    ts, tac, true, *_ = _alcohol(sim, "drinking")
    drink = script_of(sim, "drinking").drinks[0]
    assert 0.015 <= drink.elim_g_dl_h <= 0.020
    hours = np.diff(ts) / 3600.0
    slope = np.diff(true) / hours
    falling = (ts[1:] > drink.peak_s + 1) & (true[1:] > 0) & (ts[:-1] > drink.peak_s)
    assert falling.sum() >= 2
    assert np.allclose(slope[falling], -drink.elim_g_dl_h)
    rising = ts[1:] <= drink.peak_s
    assert np.all(np.diff(true)[rising] <= 0.015 + 1e-9)  # at most 0.015 g/dL per 30 min
    # Noisy readings too: a straight-line fit of the falling part is within the bounds.
    sel = (ts > drink.peak_s + 1800) & (tac > 0.01)
    fit = np.polyfit(ts[sel] / 3600.0, tac[sel], 1)[0]
    assert -0.024 <= fit <= -0.012
    over = np.flatnonzero(tac >= THRESHOLD_G_DL)
    assert len(over) >= 2 and over[1] == over[0] + 1
    (rec,) = truth_of(sim, "drinking", "alcohol_detected")
    assert rec.occurred_at.timestamp() == ts[over[0]]


def test_interferent_is_a_jump_not_a_drink(sim: Simulation) -> None:
    ts, tac, *_ = _alcohol(sim, "interferent")
    at_s, _peak = script_of(sim, "interferent").interferents[0]
    k = int(np.flatnonzero(ts == at_s)[0])
    assert tac[k] - tac[k - 1] > 0.05  # in 30 min: faster than any drinking
    assert tac[k + 1] >= THRESHOLD_G_DL and tac[k + 2] < THRESHOLD_G_DL
    assert truth_of(sim, "interferent", "alcohol_suspect_interferent", "alert")
    assert truth_of(sim, "interferent", "alcohol_detected", "no_alert")
    assert not truth_of(sim, "interferent", "alcohol_detected", "alert")


def test_bracelet_off_moves_ir_and_skin_temperature(sim: Simulation) -> None:
    ts, tac, _true, temp, ir, contact = _alcohol(sim, "alcohol_tamper")
    off, on = script_of(sim, "alcohol_tamper").removals[0]
    during = (ts >= off) & (ts < on)
    before = ts < off
    assert during.sum() >= 3 and not contact[during].any() and contact[before].all()
    assert ir[during].max() < 0.2 * np.median(ir[before])
    assert temp[during][1:].max() < np.median(temp[before]) - 5.0
    assert np.all(tac[during] == 0)
    (rec,) = truth_of(sim, "alcohol_tamper", "alcohol_tamper")
    assert rec.occurred_at.timestamp() == ts[during][0]


@pytest.mark.parametrize("field", ["accuracy_m", "speed_mps", "battery_pct"])
def test_gps_fields_in_range(sim: Simulation, field: str) -> None:
    values = getattr(sim.fixes, field)
    assert np.all(values >= 0)
    if field == "accuracy_m":
        assert values.min() >= 3.0 and values.max() <= 50.0


def test_gps_errors_match_reported_accuracy(sim: Simulation) -> None:
    """About 86.5 % of (non-outlier) fixes lie within their reported accuracy of the truth."""
    f = sim.fixes
    ok = ~f.outlier
    err = np.hypot(f.x_m - f.true_x_m, f.y_m - f.true_y_m)[ok]
    share = np.mean(err <= f.accuracy_m[ok])
    assert 0.85 <= share <= 0.88
    assert np.mean(err <= 2 * f.accuracy_m[ok]) > 0.999
    assert f.outlier.sum() > 0
