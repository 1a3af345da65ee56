"""Tag truth: silence (from arrival of readings), device events, alcohol episodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.alcohol import THRESHOLD_G_DL
from simulator.derive.common import LATE_AFTER_S, in_curfew_window, scenario_label, suspended
from simulator.localtime import iso_utc
from simulator.truth import TruthRecord, record

if TYPE_CHECKING:
    from simulator.engine import Simulation


def silence_truth(sim: Simulation) -> list[TruthRecord]:
    """Return expected silence alerts of each GPS tag.

    Contact is the newest *event time* received: readings are taken in delivery order, and a
    silence is a jump of more than ``gps_interval_s + silence_buffer_s`` between successive new
    newest timestamps (a late backlog does not restore contact: it is older than what was seen).
    """
    c = sim.config
    threshold = c.gps_interval_s + c.silence_buffer_s
    f, e = sim.fixes, sim.events
    dev = np.concatenate([f.dev, e.dev]).astype(np.int64)
    ts = np.concatenate([f.ts_s, e.ts_s]).astype(np.int64)
    got = np.concatenate([f.delivered_s, e.delivered_s])
    order = np.argsort(dev * 1e9 + (got - c.start_s), kind="stable")
    dev, ts = dev[order], ts[order]
    shifted = ts + dev * 10**10
    newest = np.maximum.accumulate(shifted)
    fresh = np.ones(len(ts), bool)
    fresh[1:] = shifted[1:] > newest[:-1]
    dev, ts = dev[fresh], ts[fresh].astype(float)
    same = dev[1:] == dev[:-1]
    out = []
    for k in np.flatnonzero(same & (np.diff(ts) > threshold)):
        out += _silence(sim, int(dev[k]), float(ts[k]), float(ts[k + 1]), threshold)
    for k in np.flatnonzero(np.append(~same, True)):
        if sim.end_s - ts[k] > threshold:
            out += _silence(sim, int(dev[k]), float(ts[k]), None, threshold)
    return out


def _silence(sim, person, last, back, threshold) -> list[TruthRecord]:
    """Records for a silence from event time ``last`` until contact at ``back`` (or the end).

    As the service's rule, by event time: at the overdue instant ``last + threshold`` a
    ``curfew_unverified`` if a curfew window covers it, else a ``device_silent``; then a
    ``curfew_unverified`` for each curfew window that starts after it and before contact.
    """
    p = sim.persons[person]
    interval = sim.config.gps_interval_s
    detect = last + threshold
    if suspended(sim, person, detect):
        return []  # silence is not a breach while monitoring is suspended
    type_ = "curfew_unverified" if in_curfew_window(sim, person, detect) else "device_silent"
    scenario, sid = scenario_label(sim, person, last, back if back is not None else sim.end_s)
    key = f"{person}:silence:{last}"
    common = {"scenario_id": sid, "offender_id": p.offender_id, "device_id": p.gps_device_id}
    curfew = {"curfew_id": p.curfew.curfew_id} if type_ == "curfew_unverified" and p.curfew else {}
    details = {
        "last_reading_at": iso_utc(last),
        "threshold_s": threshold,
        "overdue_at": iso_utc(detect),
        "restored_at": iso_utc(back) if back is not None else None,
        "_key": key,
    }
    out = [
        record(
            "alert",
            type_,
            scenario,
            at_s=last,
            from_s=last - interval - 60.0,
            to_s=detect + interval + 120.0,
            episode=(last, back),
            severity="high" if type_ == "curfew_unverified" else None,
            timing="processing",
            details=details,
            **common,
            **curfew,
        )
    ]
    if back is not None:
        out.append(
            record(
                "alert",
                f"{type_}_ended",
                scenario,
                at_s=back,
                from_s=back - 60.0,
                to_s=back + interval + 120.0,
                episode=(last, back),
                timing="processing",
                ref_truth_id=key,
                details={"threshold_s": threshold},
                **common,
                **curfew,
            )
        )
    for ws, _we, _d in sim.curfew_windows.get(person, []):
        if detect < ws < (back if back is not None else sim.end_s):
            out += _into_curfew(sim, person, ws, back, scenario, common)
    return out


def _into_curfew(sim, person, ws, back, scenario, common) -> list[TruthRecord]:
    """``curfew_unverified`` (and its ``…_ended`` at contact) for a silence that ran into a curfew
    window starting at ``ws``."""
    p, interval = sim.persons[person], sim.config.gps_interval_s
    curfew_id = p.curfew.curfew_id if p.curfew else None
    key = f"{person}:silence-curfew:{ws}"
    out = [
        record(
            "alert",
            "curfew_unverified",
            scenario,
            at_s=ws,
            from_s=ws - 60.0,
            to_s=ws + interval + 120.0,
            severity="high",
            timing="processing",
            details={"note": "silence ran into a curfew window", "_key": key},
            curfew_id=curfew_id,
            **common,
        )
    ]
    if back is not None:
        out.append(
            record(
                "alert",
                "curfew_unverified_ended",
                scenario,
                at_s=back,
                from_s=back - 60.0,
                to_s=back + interval + 120.0,
                episode=(ws, back),
                timing="processing",
                ref_truth_id=key,
                details={"note": "ends the curfew_unverified of the window"},
                curfew_id=curfew_id,
                **common,
            )
        )
    return out


EVENT_ALERTS = {
    "strap_tamper": ("high", False),
    "strap_restored": (None, True),
    "battery_low": ("medium", False),
}


def event_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected device-event alerts (one per event, at its timestamp)."""
    e = sim.events
    out = []
    for k in range(len(e)):
        kind = e.kind[k]
        if kind not in EVENT_ALERTS:
            continue
        severity, optional = EVENT_ALERTS[kind]
        person, ts = int(e.dev[k]), float(e.ts_s[k])
        p = sim.persons[person]
        scenario, sid = "background", None
        for s in sim.scripts:
            if s.person is p and (
                any(t == ts for t, _k, _d in s.events) or s.battery_low_at_s == ts
            ):
                scenario, sid = s.kind, s.scenario_id
        out.append(
            record(
                "alert",
                kind,
                scenario,
                at_s=ts,
                from_s=ts - 1.0,
                to_s=ts + 1.0,
                severity=severity,
                optional=optional,
                late=bool(e.delivered_s[k] - ts > LATE_AFTER_S),
                scenario_id=sid,
                offender_id=p.offender_id,
                device_id=p.gps_device_id,
                details={"detail": e.detail[k]} if e.detail[k] else {},
            )
        )
    return out


def _scripted(sim, person: int, attr: str, item) -> tuple[str, str | None]:
    for s in sim.scripts:
        if s.person is not None and s.person.index == person and item in getattr(s, attr):
            return s.kind, s.scenario_id
    return "background", None


def alcohol_truth(sim: Simulation) -> list[TruthRecord]:
    """Return expected alcohol alerts (and explicit no-alerts for interferents)."""
    a = sim.alcohol
    interval = sim.config.alcohol_interval_s
    out = []
    for person, plan in sim.alcohol_plans.items():
        p = sim.persons[person]
        m = a.dev == person
        ts, tac = a.ts_s[m].astype(float), a.tac_g_dl[m]
        common = {"offender_id": p.offender_id, "device_id": p.alcohol_device_id}
        for drink in plan.drinks:
            up, down = drink.crossing_s()
            over = tac >= THRESHOLD_G_DL
            pair = np.flatnonzero(
                over[:-1] & over[1:] & (ts[:-1] >= drink.start_s) & (ts[:-1] <= drink.end_s)
            )
            scenario, sid = _scripted(sim, person, "drinks", drink)
            details = {
                "peak_g_dl": round(drink.peak_g_dl, 4),
                "rise_g_dl_per_h": round(drink.rise_g_dl_h, 4),
                "elimination_g_dl_per_h": round(drink.elim_g_dl_h, 4),
                "true_crossing_up": iso_utc(up),
                "true_crossing_down": iso_utc(down),
            }
            if pair.size == 0:
                if ts.size and up < ts[-1]:
                    out.append(
                        record(
                            "alert",
                            "alcohol_detected",
                            scenario,
                            at_s=up,
                            from_s=up - interval,
                            to_s=down + interval,
                            optional=True,
                            scenario_id=sid,
                            details=details,
                            **common,
                        )
                    )
                continue
            k = int(pair[0])
            out.append(
                record(
                    "alert",
                    "alcohol_detected",
                    scenario,
                    at_s=ts[k],
                    from_s=min(up, ts[k]) - 60.0,
                    to_s=ts[k + 1] + 60.0,
                    episode=(up, down),
                    scenario_id=sid,
                    details=details,
                    **common,
                )
            )
        for at_s, peak in plan.interferents:
            scenario, sid = _scripted(sim, person, "interferents", (at_s, peak))
            details = {"peak_g_dl": round(peak, 4)}
            out.append(
                record(
                    "alert",
                    "alcohol_suspect_interferent",
                    scenario,
                    at_s=at_s,
                    from_s=at_s - 60.0,
                    to_s=at_s + interval + 60.0,
                    scenario_id=sid,
                    details=details,
                    **common,
                )
            )
            out.append(
                record(
                    "no_alert",
                    "alcohol_detected",
                    scenario,
                    from_s=at_s - interval,
                    to_s=at_s + 2 * interval + 60.0,
                    scenario_id=sid,
                    details={**details, "rule": "a jump is not a drink"},
                    **common,
                )
            )
        for off, on in plan.removals:
            scenario, sid = _scripted(sim, person, "removals", (off, on))
            after = ts[ts >= off]
            if not after.size:
                continue
            first = float(after[0])
            out.append(
                record(
                    "alert",
                    "alcohol_tamper",
                    scenario,
                    at_s=first,
                    from_s=off - 60.0,
                    to_s=first + interval + 60.0,
                    episode=(off, on),
                    scenario_id=sid,
                    details={"removed_at": iso_utc(off), "refitted_at": iso_utc(on)},
                    **common,
                )
            )
    return out
