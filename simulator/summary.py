"""What a run produced, in numbers: people, readings by type, scenarios, ground truth."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.engine import Simulation


def out_of_order(dev: np.ndarray, ts_s: np.ndarray, delivered_s: np.ndarray) -> int:
    """Return how many readings arrive after a later-stamped reading of the same device."""
    rel = delivered_s - delivered_s.min() if len(delivered_s) else delivered_s
    order = np.argsort(dev.astype(np.int64) * 1e9 + rel, kind="stable")
    d, t = dev[order].astype(np.int64), ts_s[order].astype(np.int64)
    shifted = t + d * 10**10
    running = np.maximum.accumulate(shifted)
    prev = np.concatenate([[np.iinfo(np.int64).min], running[:-1]])
    return int(np.sum(shifted < prev))


def summary(sim: Simulation) -> dict:
    """Return the counts of ``sim`` (JSON-friendly, deterministic)."""
    f, a, e = sim.fixes, sim.alcohol, sim.events
    dev = np.concatenate([f.dev, e.dev])
    ts = np.concatenate([f.ts_s, e.ts_s])
    got = np.concatenate([f.delivered_s, e.delivered_s])
    truth = Counter(f"{r.expect}:{r.type}" for r in sim.truth)
    return {
        "persons": len(sim.persons),
        "devices": {
            "gps": len(sim.persons),
            "alcohol": sum(p.alcohol_device_id is not None for p in sim.persons),
        },
        "readings": {
            "gps": len(f),
            "alcohol": len(a),
            "event": len(e),
            "total": len(f) + len(a) + len(e),
        },
        "events": dict(sorted(Counter(e.kind).items())),
        "gps_outliers": int(f.outlier.sum()),
        "buffered_readings": int(f.buffered.sum() + e.buffered.sum()),
        "delivered_out_of_order": out_of_order(dev, ts, got),
        "zones": sum(len(z) for z in sim.zones.values()),
        "curfews": len(sim.curfew_windows),
        "scenes": len(sim.scene_specs),
        "scenarios": dict(sorted(Counter(s.kind for s in sim.scripts).items())),
        "scenarios_skipped": [
            {"scenario_id": sid, "kind": kind, "why": why} for sid, kind, why in sim.skipped
        ],
        "truth": {
            "records": len(sim.truth),
            "required": sum(not r.optional for r in sim.truth),
            "by_type": dict(sorted(truth.items())),
        },
    }


def render(s: dict) -> str:
    """Return a human summary of :func:`summary` output."""
    r = s["readings"]
    lines = [
        f"persons            {s['persons']} ({s['devices']['alcohol']} with an alcohol tag)",
        f"readings           {r['total']:,}: gps {r['gps']:,}, alcohol {r['alcohol']:,}, "
        f"events {r['event']:,}",
        "events             " + (", ".join(f"{k} {v}" for k, v in s["events"].items()) or "none"),
        f"imperfections      {s['gps_outliers']} outliers, {s['buffered_readings']} buffered, "
        f"{s['delivered_out_of_order']} delivered out of order",
        f"conditions         {s['zones']} zones, {s['curfews']} curfews; {s['scenes']} scenes",
        "scenarios          "
        + (", ".join(f"{k} {v}" for k, v in s["scenarios"].items()) or "none"),
    ]
    for skip in s["scenarios_skipped"]:
        lines.append(f"  skipped          {skip['scenario_id']}: {skip['why']}")
    t = s["truth"]
    lines.append(f"ground truth       {t['records']} records ({t['required']} required)")
    for k, v in t["by_type"].items():
        lines.append(f"  {k:<40} {v}")
    return "\n".join(lines)
