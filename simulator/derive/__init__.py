"""Derive the ground truth from true trails and delivered readings (see :mod:`simulator.truth`).

* Zones: exact true inside intervals (outside, for inclusion zones) of every zone, intersected with
  its schedule → ``exclusion_breach``/``inclusion_breach`` at the entry, ``…_ended`` at the exit.
* Curfews: true time outside the address circle during each window → ``curfew_breach`` at the
  start of that time (the window start for a late return), ``curfew_breach_ended`` at its end (the
  return home, or the window end after an early leave).
* Silence: a GPS tag whose newest received timestamp does not advance for longer than
  ``gps_interval_s + silence_buffer_s`` → ``device_silent`` (``curfew_unverified`` if it becomes
  overdue during a curfew window), then ``curfew_unverified`` for each curfew window that starts
  while it is still silent, each with its ``…_ended`` when a newer reading restores contact
  (timing ``processing``: paced runs raise them on a timer, fast replays only when contact
  returns, late).
* Device events: ``strap_tamper`` (high), ``battery_low`` (medium), ``strap_restored`` (optional);
  charging events are context, not alerts, and are not listed.
* Alcohol: ``alcohol_detected`` at the first of two consecutive readings >= 0.020 g/dL of each
  drinking episode; ``alcohol_suspect_interferent`` (and ``no_alert`` for ``alcohol_detected``)
  for an interferent; ``alcohol_tamper`` at the first reading after the bracelet comes off.
* Scenes: every person whose true trail enters a scene's radius inside its window → a ``match``
  (``at_scene`` when the dwell is >= 5 min, else ``passed_by``); near things are ``optional``.

``late`` is expected when the first fix at or after the true instant reached the broker more than
60 s after it was taken (a store-and-forward burst).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from simulator.derive.common import suspended
from simulator.derive.places import curfew_truth, zone_truth
from simulator.derive.scenes import scene_truth
from simulator.derive.tags import alcohol_truth, event_truth, silence_truth
from simulator.truth import TruthRecord, finalise

if TYPE_CHECKING:
    from simulator.engine import Simulation


def derive_truth(sim: Simulation) -> list[TruthRecord]:
    """Return every ground-truth record of ``sim``, sorted, with ids."""
    records = (
        zone_truth(sim)
        + curfew_truth(sim)
        + silence_truth(sim)
        + event_truth(sim)
        + alcohol_truth(sim)
        + scene_truth(sim)
    )
    for script in sim.scripts:
        if script.truth is not None:
            records += script.truth(sim, script)
    paused = {
        s.person.offender_id: s.person.index for s in sim.scripts if s.monitoring and s.person
    }
    records = [r for r in records if not _paused(sim, paused, r)]
    for script in sim.scripts:
        for sp in script.suspensions:
            assert script.person is not None
            _suppress(records, script.person.offender_id, sp)
    return finalise(records)


def _suppress(records: list[TruthRecord], offender_id: str, sp: dict) -> None:
    """A breach of a suspended zone or curfew starting inside the suspension is still alerted,
    but suppressed: severity ``info``."""
    lo, hi = datetime.fromisoformat(sp["from"]), datetime.fromisoformat(sp["until"])
    for r in records:
        subject = r.zone_id or r.curfew_id
        start = r.episode_start or r.occurred_at
        if (
            r.offender_id == offender_id
            and subject == sp["subject_id"]
            and r.type.endswith(("_breach", "_breach_ended"))
            and start is not None
            and lo <= start < hi
        ):
            r.severity = "info"
            r.details = {**r.details, "suppressed": sp["suspension_id"]}


def _paused(sim: Simulation, paused: dict[str, int], r: TruthRecord) -> bool:
    """Whether the service must say nothing of ``r``: its person's monitoring was suspended at
    its time (only a strap tamper gets through)."""
    if r.expect != "alert" or r.type == "strap_tamper" or r.offender_id not in paused:
        return False
    at = r.occurred_at or r.occurred_from
    return at is not None and suspended(sim, paused[r.offender_id], at.timestamp())


__all__ = ["derive_truth"]
