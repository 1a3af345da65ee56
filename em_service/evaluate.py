"""Alert quality: score the alerts a run produced against the simulator's ground truth.

Matching (one alert, one truth record at most):

- An alert matches a truth record with ``expect`` ``alert`` (or ``match`` for scenes) of the same
  ``type``, ``offender_id`` and ``zone_id`` / ``curfew_id`` / ``scene_id`` whose
  ``[occurred_from, occurred_to]`` holds the alert's ``occurred_at``; of several, the unmatched one
  whose ``occurred_at`` is nearest wins. Alerts are de-duplicated by ``alert_id`` first.
- A matched required record is a true positive; a required record no alert matched is a miss.
  ``optional`` records are neither: unmatched they are no miss, matched they make no false alert.
- Any other alert of a type the truth covers (``truth_coverage.complete`` of the manifest) is a
  false alert: a second alert for an episode already matched (``duplicate``; for
  ``scene_proximity`` a stronger class for a matched person and scene is an ``upgrade``, not
  false: the service alerts once per class), one inside a
  ``no_alert`` / ``no_match`` record's window (``near_miss``: the record's type and its
  ``…_ended``, its ids, and its offender unless the record names none), else ``unexpected``.
- Every required record counts, whether or not the service raised any alert of its type: a
  rule it never raised is all misses (and listed as never raised), never left out of recall.

Detection delay is ``detected_at - occurred_at`` of true positives, with ``detected_at`` first
mapped to the stream's clock if the run was a replay (see :class:`StreamClock`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from em_service.contracts import Alert
from simulator.output import TRUTH_COVERAGE

#: Alert types the simulator's truth lists completely (used when there is no manifest).
DEFAULT_COMPLETE: tuple[str, ...] = tuple(TRUTH_COVERAGE["complete"])
#: The rules whose false alerts the "<= 1 false breach alert per person-month" target counts.
BREACH_TYPES = ("exclusion_breach", "inclusion_breach", "curfew_breach")
#: Rules that alert again, with a new id, when a match gets stronger.
UPGRADABLE = ("scene_proximity",)
DAYS_PER_MONTH = 30.0


class Truth(msgspec.Struct):
    """The fields of a ``truth.jsonl`` record the scoring uses (others are ignored)."""

    truth_id: str
    expect: str
    type: str
    scenario: str = ""
    offender_id: str | None = None
    zone_id: str | None = None
    curfew_id: str | None = None
    scene_id: str | None = None
    occurred_at: datetime | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    optional: bool = False
    late: bool | None = None
    severity: str | None = None

    @property
    def required(self) -> bool:
        return self.expect in ("alert", "match") and not self.optional

    def holds(self, t: datetime) -> bool:
        """Return True if ``t`` is within this record's window."""
        lo = self.occurred_from or self.occurred_at
        hi = self.occurred_to or self.occurred_at
        return (lo is None or lo <= t) and (hi is None or t <= hi)


@dataclass
class RuleScore:
    """Counts of one rule (alert type)."""

    rule: str
    expected: int = 0  # required truth records
    true_positives: int = 0
    missed: int = 0
    false_alerts: int = 0
    optional_matched: int = 0
    upgrades: int = 0  # scene_proximity: a further alert of a stronger class, same match
    late_mismatch: int = 0  # matched, but the late flag differs from the truth's
    severity_mismatch: int = 0
    delays_s: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.expected if self.expected else None

    def delay_s(self, q: float) -> float | None:
        """Return the ``q``-th percentile of detection delay, s (None without matches)."""
        return float(np.percentile(self.delays_s, q)) if self.delays_s else None


@dataclass
class Finding:
    """One miss or false alert, for the report."""

    kind: str  # missed | duplicate | near_miss | unexpected
    rule: str
    offender_id: str | None
    at: datetime | None
    ref: str  # truth_id or alert_id
    scenario: str = ""


@dataclass
class Report:
    """The result of :func:`score`."""

    rules: dict[str, RuleScore]
    findings: list[Finding]
    person_days: float | None
    never_raised: dict[str, int]  # rule no alert was raised for -> its (missed) required records
    unscored_alerts: Counter[str]  # alerts of types the truth does not cover
    near_miss_records: int = 0
    near_miss_false: int = 0
    delay_clock: str = "wall"  # wall | stream (a replay) | none
    delay_resolution_s: float | None = None

    def total(self, attr: str, rules: Iterable[str] | None = None) -> int:
        """Return the sum of ``attr`` over ``rules`` (default all scored rules)."""
        names = self.rules if rules is None else rules
        return sum(getattr(self.rules[r], attr) for r in names if r in self.rules)

    @property
    def recall(self) -> float | None:
        expected = self.total("expected")
        return self.total("true_positives") / expected if expected else None

    def per_person_month(self, rules: Iterable[str] | None = None) -> float | None:
        """Return false alerts per person-month (30 days) over ``rules`` (default all)."""
        if not self.person_days:
            return None
        return self.total("false_alerts", rules) * DAYS_PER_MONTH / self.person_days

    def delay_s(self, q: float) -> float | None:
        """Return the ``q``-th percentile detection delay over every rule, s."""
        delays = [d for r in self.rules.values() for d in r.delays_s]
        return float(np.percentile(delays, q)) if delays else None


# --- scoring (pure) ------------------------------------------------------------------------


def _key(type_: str, x: Truth | Alert) -> tuple:
    return (type_, x.offender_id, x.zone_id, x.curfew_id, x.scene_id)


def score(
    truth: Sequence[Truth],
    alerts: Iterable[Alert],
    *,
    person_days: float | None = None,
    complete: Iterable[str] = DEFAULT_COMPLETE,
    stream_time: Callable[[Alert], datetime | None] | None = None,
    delays: bool = True,
) -> Report:
    """Return the scores of ``alerts`` against ``truth`` (see the module docstring).

    ``stream_time`` maps an alert to its detection time on the replayed stream's clock;
    ``delays=False`` measures no delay (a replay whose clock is unknown).
    """
    unique = list({a.alert_id: a for a in reversed(list(alerts))}.values())[::-1]
    raised = Counter(a.type for a in unique)
    complete = set(complete)
    scored = complete | {r.type for r in truth if r.expect in ("alert", "match")}
    rules = {t: RuleScore(t) for t in sorted(scored)}
    index: dict[tuple, list[Truth]] = {}
    for r in truth:
        if r.type in scored and r.expect in ("alert", "match"):
            index.setdefault(_key(r.type, r), []).append(r)
            rules[r.type].expected += r.required
    quiet = [r for r in truth if r.expect in ("no_alert", "no_match") and r.type in scored]
    matched: set[str] = set()
    findings: list[Finding] = []
    caught: set[str] = set()
    for a in sorted(unique, key=lambda a: a.occurred_at):
        if a.type not in scored:
            continue
        rule = rules[a.type]
        windows = [r for r in index.get(_key(a.type, a), ()) if r.holds(a.occurred_at)]
        free = [r for r in windows if r.truth_id not in matched]
        if free:
            best = min(free, key=lambda r: (not r.required, _distance(r, a.occurred_at)))
            matched.add(best.truth_id)
            if not best.required:
                rule.optional_matched += 1
                continue
            rule.true_positives += 1
            rule.late_mismatch += best.late is not None and best.late != a.late
            rule.severity_mismatch += best.severity is not None and best.severity != a.severity
            detected = stream_time(a) if stream_time else a.detected_at
            if delays and detected is not None:
                rule.delays_s.append((detected - a.occurred_at).total_seconds())
            continue
        if a.type not in complete:
            continue
        if windows and a.type in UPGRADABLE:
            rule.upgrades += 1
            continue
        near = next((r for r in quiet if _silences(r, a)), None)
        kind = "duplicate" if windows else "near_miss" if near else "unexpected"
        if near:
            caught.add(near.truth_id)
        rule.false_alerts += 1
        scenario = near.scenario if near else windows[0].scenario if windows else ""
        findings.append(Finding(kind, a.type, a.offender_id, a.occurred_at, a.alert_id, scenario))
    for keyed in index.values():
        for r in keyed:
            if r.required and r.truth_id not in matched:
                rules[r.type].missed += 1
                findings.append(
                    Finding("missed", r.type, r.offender_id, r.occurred_at, r.truth_id, r.scenario)
                )
    return Report(
        rules=rules,
        findings=sorted(findings, key=lambda f: (f.kind, f.rule, f.at or datetime.min)),
        person_days=person_days,
        never_raised={t: r.expected for t, r in rules.items() if r.expected and not raised[t]},
        unscored_alerts=Counter(a.type for a in unique if a.type not in scored),
        near_miss_records=len(quiet),
        near_miss_false=len(caught),
        delay_clock="none" if not delays else "stream" if stream_time else "wall",
        delay_resolution_s=getattr(stream_time, "resolution_s", None),
    )


def _distance(r: Truth, t: datetime) -> float:
    ref = r.occurred_at or r.occurred_from
    return abs((t - ref).total_seconds()) if ref else 0.0


def _silences(r: Truth, a: Alert) -> bool:
    """Return True if no_alert/no_match record ``r`` forbids alert ``a``."""
    if a.type not in (r.type, f"{r.type}_ended"):
        return False
    if r.offender_id not in (None, a.offender_id):
        return False
    wanted = (r.zone_id, r.curfew_id, r.scene_id)
    got = (a.zone_id, a.curfew_id, a.scene_id)
    if any(w is not None and w != g for w, g in zip(wanted, got, strict=True)):
        return False
    return r.scene_id is not None or r.holds(a.occurred_at)  # a scene forbids any time


# --- replay clock ----------------------------------------------------------------------------


@dataclass
class StreamClock:
    """Map an alert's ``detected_at`` (wall time) to the replayed stream's time.

    ``samples`` are ``(wall epoch s, readings taken in)`` pairs of the worker's progress, in
    time order; ``delivered_s`` the delivery time (epoch s) of each reading in the order sent.
    A wall instant maps to the delivery time of the reading the worker was taking in then
    (interpolated between samples), so a replayed alert's delay is measured in stream time: how
    long the data made the service wait, not the wall-clock pipeline latency (which
    bench/pipeline_bench.py measures). Its resolution is :attr:`resolution_s`.

    Alerts the archiver raises from its archive when a crime scene arrives (``details.origin``
    ``retro``) are mapped through ``sent``, the ``(wall, readings sent)`` progress of a paced
    replay (the simulated "now": the scene arrives at its report time); a fast replay has no
    such clock, and their delay is not measured (None).
    """

    samples: list[tuple[float, float]]
    delivered_s: np.ndarray
    sent: list[tuple[float, float]] = field(default_factory=list)

    def __call__(self, alert: Alert) -> datetime | None:
        if alert.details.get("origin") != "retro":
            return self.at(alert.detected_at, self.samples)
        return self.at(alert.detected_at, self.sent) if self.sent else None

    def at(self, wall: datetime, samples: list[tuple[float, float]]) -> datetime:
        """Return the delivery time of the reading ``samples`` say was current at ``wall``."""
        walls, counts = np.asarray(samples, dtype=np.float64).T
        k = float(np.interp(wall.timestamp(), walls, counts))
        i = int(np.clip(round(k), 0, len(self.delivered_s) - 1))  # the next reading taken in
        return datetime.fromtimestamp(float(self.delivered_s[i]), UTC)

    def save(self, path: Path) -> None:
        """Write the clock to ``path`` (``.npz``), for ``em-service evaluate --stream-clock``."""
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                samples=np.asarray(self.samples, np.float64).reshape(-1, 2),
                sent=np.asarray(self.sent, np.float64).reshape(-1, 2),
                delivered_s=self.delivered_s,
            )

    @classmethod
    def load(cls, path: Path) -> StreamClock:
        """Read a clock written by :meth:`save`."""
        with np.load(path) as z:
            return cls(
                [tuple(r) for r in z["samples"].tolist()],
                z["delivered_s"],
                [tuple(r) for r in z["sent"].tolist()],
            )

    @property
    def resolution_s(self) -> float:
        """Return the median stream time the worker took in between two samples, s."""
        counts = np.asarray([c for _, c in self.samples], dtype=np.float64)
        idx = np.clip(counts.round().astype(int), 0, len(self.delivered_s) - 1)
        steps = np.diff(self.delivered_s[idx])
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) else 0.0


# --- input -----------------------------------------------------------------------------------

_truth_decoder = msgspec.json.Decoder(Truth)
_alert_decoder = msgspec.json.Decoder(Alert)


def load_truth(path: Path) -> list[Truth]:
    """Return the records of a ``truth.jsonl`` file."""
    return _truth_decoder.decode_lines(path.read_bytes())


def decode_alerts(values: Iterable[bytes]) -> list[Alert]:
    """Return the alerts among raw Kafka values / JSON lines (blank lines skipped)."""
    return [_alert_decoder.decode(v) for v in values if v.strip()]


def load_manifest(truth_path: Path) -> dict[str, Any]:
    """Return ``manifest.json`` beside the truth file, or {}."""
    path = truth_path.with_name("manifest.json")
    return json.loads(path.read_text()) if path.exists() else {}


def alerts_from_kafka(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list[Alert]:
    """Return every committed alert on ``topic`` (read_committed, until quiet for a while)."""
    import asyncio

    from em_service import kafka_io

    records = asyncio.run(
        kafka_io.read_since(bootstrap, topic, None, want=sys.maxsize, timeout_s=timeout_s)
    )
    return decode_alerts(r.value for r in records)


# --- report ----------------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "–" if x is None else format(x, spec)


def render(report: Report, *, max_findings: int = 20) -> str:
    """Return the human-readable report: a per-rule table, totals, then the findings."""
    head = f"{'rule':<30}{'expected':>9}{'TP':>6}{'missed':>7}{'false':>6}{'opt':>5}"
    head += f"{'p50 s':>8}{'p95 s':>8}"
    lines = [head, "-" * len(head)]
    for r in report.rules.values():
        if not (r.expected or r.false_alerts or r.optional_matched):
            continue
        lines.append(
            f"{r.rule:<30}{r.expected:>9}{r.true_positives:>6}{r.missed:>7}{r.false_alerts:>6}"
            f"{r.optional_matched:>5}{_fmt(r.delay_s(50)):>8}{_fmt(r.delay_s(95)):>8}"
        )
    recall = report.recall
    lines.append("-" * len(head))
    lines.append(
        f"recall {_fmt(recall and recall * 100, '.1f')} % "
        f"({report.total('true_positives')}/{report.total('expected')}), "
        f"false alerts {report.total('false_alerts')}, "
        f"detection delay p50 {_fmt(report.delay_s(50))} s / p95 {_fmt(report.delay_s(95))} s"
    )
    if report.delay_clock == "stream":
        lines.append(
            "detection delay on the stream clock (replay), resolution "
            f"~{_fmt(report.delay_resolution_s)} s"
        )
        unmeasured = sum(r.true_positives - len(r.delays_s) for r in report.rules.values())
        if unmeasured:
            lines.append(
                f"  (not measured for {unmeasured} matches the archiver found when their scene "
                "was reported: a fast replay has no clock for that)"
            )
    if report.person_days:
        per_day = report.total("false_alerts") / report.person_days
        lines.append(
            f"over {report.person_days:g} person-days: {per_day:.3f} false alerts per "
            f"person-day; {report.per_person_month():.2f} per person-month "
            f"({report.per_person_month(BREACH_TYPES):.2f} of them breaches)"
        )
    lines.append(
        f"near-miss scripts: {report.near_miss_records} windows, "
        f"{report.near_miss_false} with a false alert"
    )
    upgrades = [f"{r.rule} {r.upgrades}" for r in report.rules.values() if r.upgrades]
    if upgrades:
        lines.append("upgraded matches (a stronger class, not false): " + ", ".join(upgrades))
    mismatches = [
        f"{r.rule} late {r.late_mismatch}" for r in report.rules.values() if r.late_mismatch
    ] + [
        f"{r.rule} severity {r.severity_mismatch}"
        for r in report.rules.values()
        if r.severity_mismatch
    ]
    if mismatches:
        lines.append("matched, but flags differ from the truth: " + ", ".join(mismatches))
    for rule, n in report.never_raised.items():
        lines.append(f"never raised: {rule} — the service raised no {rule} alert ({n} missed)")
    if report.unscored_alerts:
        extra = ", ".join(f"{t} {n}" for t, n in sorted(report.unscored_alerts.items()))
        lines.append(f"not scored (the truth does not list them): {extra}")
    for f in report.findings[:max_findings]:
        at = f.at.isoformat().replace("+00:00", "Z") if f.at else "–"
        lines.append(
            f"  {f.kind:<10} {f.rule:<28} {f.offender_id or '–':<10} {at} {f.ref} {f.scenario}"
        )
    if len(report.findings) > max_findings:
        lines.append(f"  … and {len(report.findings) - max_findings} more")
    return "\n".join(lines)


def summary_json(report: Report, *, persons: int | None, days: float | None) -> dict[str, Any]:
    """Return the one-line JSON summary of a run."""
    recall, rate, p50 = report.recall, report.per_person_month(), report.delay_s(50)
    return {
        "persons": persons,
        "days": days,
        "recall": None if recall is None else round(recall, 4),
        "false_alerts_per_person_month": None if rate is None else round(rate, 3),
        "p50_detection_delay_s": None if p50 is None else round(p50, 1),
    }


# --- CLI -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``em-service evaluate``."""
    p = argparse.ArgumentParser(
        prog="em-service evaluate",
        description="Score the service's alerts against a simulator ground truth (truth.jsonl).",
    )
    p.add_argument(
        "--ground-truth", type=Path, required=True, metavar="FILE", help="truth.jsonl of the run"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--alerts", type=Path, metavar="FILE", help="alerts as JSON Lines")
    src.add_argument(
        "--alerts-from-kafka", action="store_true", help="read the alerts topic (read_committed)"
    )
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: settings)")
    p.add_argument("--topic", help="alerts topic (default: settings)")
    p.add_argument(
        "--person-days",
        type=float,
        help="cohort size in person-days (default: from manifest.json beside the truth)",
    )
    p.add_argument(
        "--stream-clock",
        type=Path,
        metavar="FILE",
        help="replay clock (.npz, written by the demo) to measure detection delays of a replay",
    )
    p.add_argument("--json", action="store_true", help="also print the one-line JSON summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``em-service evaluate``; exit 0 if every required record was matched and none false."""
    args = build_parser().parse_args(argv)
    truth = load_truth(args.ground_truth)
    manifest = load_manifest(args.ground_truth)
    config = manifest.get("config", {})
    persons, days = config.get("persons"), config.get("days")
    person_days = args.person_days or (persons * days if persons and days else None)
    complete = manifest.get("truth_coverage", {}).get("complete", DEFAULT_COMPLETE)
    if args.alerts:
        alerts = decode_alerts(args.alerts.read_bytes().splitlines())
    else:
        from em_service.settings import get_settings

        s = get_settings()
        alerts = alerts_from_kafka(
            args.bootstrap or s.kafka_bootstrap, args.topic or s.topic_alerts
        )
    clock = StreamClock.load(args.stream_clock) if args.stream_clock else None
    ends = [r.occurred_to or r.occurred_at for r in truth if r.occurred_to or r.occurred_at]
    replay = bool(ends) and any((a.detected_at - max(ends)).total_seconds() > 3600 for a in alerts)
    report = score(
        truth,
        alerts,
        person_days=person_days,
        complete=complete,
        stream_time=clock,
        delays=clock is not None or not replay,
    )
    print(f"{len(alerts)} alerts against {len(truth)} truth records ({args.ground_truth})")
    print(render(report))
    if replay and clock is None:
        print("detection delay not measured: the alerts were detected long after the simulated")
        print("period (a replay); pass the replay's --stream-clock (the demo writes one)")
    if args.json:
        print(json.dumps(summary_json(report, persons=persons, days=days)))
    return 0 if report.recall in (None, 1.0) and not report.total("false_alerts") else 1
