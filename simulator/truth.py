"""Ground truth: what the service should (and should not) say, in JSON Lines.

One :class:`TruthRecord` per expected alert, expected scene match, or explicit expectation of
silence (``no_alert`` for a near-miss, ``no_match`` for a scene no one visited). Records are derived
from the *true* trails and the *delivered* readings, not from the scenario scripts alone, so a
background person's accidental breach would appear too.

``occurred_at`` is the true instant; an alert matches when its ``occurred_at`` falls within
``[occurred_from, occurred_to]`` (fix-based rules allow one fix interval + 60 s before and two
intervals + 60 s after, because a service only sees the world at its fixes). ``timing`` is
``processing`` for silence rules, whose alerts depend on when readings *arrive* (a paced run
raises them on a timer; a fast replay can only notice the gap when contact returns, late), else
``event``. ``optional`` records are
neither required nor false when raised (config-dependent alerts, undetectable slivers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from simulator.localtime import as_utc

Expect = Literal["alert", "no_alert", "match", "no_match"]


class TruthRecord(msgspec.Struct, forbid_unknown_fields=True):
    """One ground-truth record (see the module docstring for the matching rule)."""

    truth_id: str
    expect: Expect
    type: str
    scenario: str
    scenario_id: str | None = None
    offender_id: str | None = None
    device_id: str | None = None
    zone_id: str | None = None
    curfew_id: str | None = None
    scene_id: str | None = None
    occurred_at: datetime | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    episode_start: datetime | None = None
    episode_end: datetime | None = None
    duration_s: float | None = None
    severity: str | None = None
    late: bool | None = None
    match_class: str | None = None
    optional: bool = False
    timing: Literal["event", "processing"] = "event"
    ref_truth_id: str | None = None
    details: dict[str, Any] = {}


def record(
    expect: Expect,
    type_: str,
    scenario: str,
    *,
    at_s: float | None = None,
    from_s: float | None = None,
    to_s: float | None = None,
    episode: tuple[float | None, float | None] | None = None,
    **fields: Any,
) -> TruthRecord:
    """Return a record with times given as epoch seconds (``truth_id`` is assigned later)."""
    start, end = episode or (None, None)
    duration = end - start if start is not None and end is not None else None
    return TruthRecord(
        truth_id="",
        expect=expect,
        type=type_,
        scenario=scenario,
        occurred_at=as_utc(at_s) if at_s is not None else None,
        occurred_from=as_utc(from_s) if from_s is not None else None,
        occurred_to=as_utc(to_s) if to_s is not None else None,
        episode_start=as_utc(start) if start is not None else None,
        episode_end=as_utc(end) if end is not None else None,
        duration_s=round(duration, 3) if duration is not None else None,
        **fields,
    )


def _sort_key(r: TruthRecord) -> tuple:
    at = r.occurred_at or r.occurred_from
    return (at.timestamp() if at else 0.0, r.offender_id or "", r.scene_id or "", r.type, r.expect)


def finalise(records: list[TruthRecord]) -> list[TruthRecord]:
    """Return ``records`` sorted by time with ids ``gt-000001``… and ``ref_truth_id`` resolved.

    Before this, ``ref_truth_id`` may hold a temporary key set by the producer with ``details``
    entry ``_key``; both are replaced by the final ids.
    """
    ordered = sorted(records, key=_sort_key)
    ids = {}
    for n, r in enumerate(ordered, 1):
        r.truth_id = f"gt-{n:06d}"
        key = r.details.get("_key")
        if key is not None:
            ids[key] = r.truth_id
    for r in ordered:
        r.details.pop("_key", None)
        if r.ref_truth_id is not None:
            r.ref_truth_id = ids.get(r.ref_truth_id)
    return ordered


_encoder = msgspec.json.Encoder()


def encode_lines(records: list[TruthRecord]) -> bytes:
    """Return JSON Lines for ``records``."""
    return _encoder.encode_lines(records)


def decode_lines(data: bytes) -> list[TruthRecord]:
    """Return the records of a ``truth.jsonl`` file's bytes."""
    return msgspec.json.Decoder(TruthRecord).decode_lines(data)
