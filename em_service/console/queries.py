"""What the console reads: the alert queue (severity tiers), a person's status, the caseload
review (red/amber/green). Reads only; every write goes through the store's own functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Literal

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from em_service.rules.tiers import TIER_OF
from em_service.store.models import AlertRow, DeviceAssignment, Fix
from em_service.store.types import from_ms

Tier = Literal["critical", "urgent", "warning"]
TIERS: tuple[Tier, ...] = ("critical", "urgent", "warning")
CRITICAL_TYPES = frozenset(t for t, v in TIER_OF.items() if v == "critical")
URGENT_TYPES = frozenset(t for t, v in TIER_OF.items() if v == "urgent")
BREACH_TYPES = frozenset({"exclusion_breach", "inclusion_breach", "curfew_breach"})
TAMPER_TYPES = frozenset({"strap_tamper", "alcohol_tamper"})
QUEUE_LIMIT = 200
#: Open alerts shown per person on the review, the most urgent (queue order); the rest are one
#: link away (the queue filtered to the person). Three fit one glance per row and keep the page
#: to at most 1,500 alert lines for a 500-person caseload.
REVIEW_OPEN_SHOWN = 3
REVIEW_DAYS = 14
#: The review rule, shown on the page as written here.
RAG_RULE = {
    "red": "any confirmed breach (exclusion, inclusion or curfew with definite evidence), "
    "tamper (strap or alcohol monitor) or unverified curfew",
    "amber": "device silence, breaches on possible evidence only, alcohol detected or suspect",
    "green": "none of these",
}


def tier_of(alert_type: str) -> Tier:
    """Return the queue tier of an alert type (:mod:`em_service.rules.tiers`; info counts as a
    warning in the queue): critical above urgent above warning."""
    if alert_type in CRITICAL_TYPES:
        return "critical"
    return "urgent" if alert_type in URGENT_TYPES else "warning"


def tier_types() -> dict[str, list[str]]:
    """Return tier → alert types (critical and urgent; every other type is a warning)."""
    return {"critical": sorted(CRITICAL_TYPES), "urgent": sorted(URGENT_TYPES)}


def label(alert_type: str) -> str:
    """Return a human label for an alert type (``curfew_breach`` → ``Curfew breach``)."""
    return alert_type.replace("_", " ").capitalize()


_TIER_RANK = case(
    {**dict.fromkeys(CRITICAL_TYPES, 0), **dict.fromkeys(URGENT_TYPES, 1)},
    value=AlertRow.type,
    else_=2,
)


#: What a queue row shows (rows are read as plain tuples: no ORM objects per row).
QUEUE_COLUMNS = (
    AlertRow.alert_id,
    AlertRow.type,
    AlertRow.offender_id,
    AlertRow.occurred_at,
    AlertRow.status,
    AlertRow.episode_end,
    AlertRow.lat,
    AlertRow.escalation_level,
)
#: Escalated alerts still open come first, the higher level first.
_ESCALATED_FIRST = case(
    (AlertRow.status == "open", -AlertRow.escalation_level),
    else_=0,
)


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters (None: any)."""

    person: str | None = None
    type: str | None = None
    tier: Tier | None = None
    status: Literal["open", "acknowledged"] | None = None
    since: datetime | None = None


def queue(
    session: Session, *, only: frozenset[str] | None, f: QueueFilter, limit: int = QUEUE_LIMIT
) -> tuple[list, int, int]:
    """Return alerts not yet closed (``QUEUE_COLUMNS``): escalated and still open first, then
    the most severe tier, then oldest first; with how many match and how many of those are
    unacknowledged. Alerts suppressed by an approved absence are not for the queue (they are in
    the person's history)."""
    conds = [AlertRow.status.in_(("open", "acknowledged")), ~AlertRow.suppressed]
    if only is not None:
        conds.append(AlertRow.offender_id.in_(sorted(only)))
    if f.person:
        conds.append(AlertRow.offender_id == f.person)
    if f.type:
        conds.append(AlertRow.type == f.type)
    if f.tier == "critical":
        conds.append(AlertRow.type.in_(sorted(CRITICAL_TYPES)))
    elif f.tier == "urgent":
        conds.append(AlertRow.type.in_(sorted(URGENT_TYPES)))
    elif f.tier == "warning":
        conds.append(AlertRow.type.not_in(sorted(CRITICAL_TYPES | URGENT_TYPES)))
    if f.status:
        conds.append(AlertRow.status == f.status)
    if f.since:
        conds.append(AlertRow.occurred_at >= f.since)
    total, unacknowledged = session.execute(
        select(func.count(), func.count().filter(AlertRow.status == "open"))
        .select_from(AlertRow)
        .where(*conds)
    ).one()
    rows = session.execute(
        select(*QUEUE_COLUMNS)
        .where(*conds)
        .order_by(_ESCALATED_FIRST, _TIER_RANK, AlertRow.occurred_at, AlertRow.alert_id)
        .limit(limit)
    ).all()
    return list(rows), total, unacknowledged


def rag_from(kinds: set[tuple[str, bool]]) -> Literal["red", "amber", "green"]:
    """Return red/amber/green from one person's (alert type, confirmed) pairs (see RAG_RULE)."""
    red = amber = False
    for alert_type, confirmed in kinds:
        if alert_type in BREACH_TYPES:
            red, amber = red or confirmed, amber or not confirmed
        elif alert_type in TAMPER_TYPES or alert_type == "curfew_unverified":
            red = True
        elif alert_type in AMBER_TYPES:
            amber = True
    return "red" if red else "amber" if amber else "green"


def rag_of(rows: list[AlertRow]) -> Literal["red", "amber", "green"]:
    """Return red/amber/green for one person's alerts of the review period."""
    return rag_from({(r.type, r.confirmed) for r in rows})


AMBER_TYPES = frozenset({"device_silent", "alcohol_detected", "alcohol_suspect_interferent"})
RAG_TYPES = sorted(BREACH_TYPES | TAMPER_TYPES | AMBER_TYPES | {"curfew_unverified"})


#: Not closed and not suppressed by an approved absence: what the queue shows.
_OPEN = (AlertRow.status.in_(("open", "acknowledged")), ~AlertRow.suppressed)
#: Queue order: escalated and still open first, the most severe tier, the oldest.
_URGENCY = (_ESCALATED_FIRST, _TIER_RANK, AlertRow.occurred_at, AlertRow.alert_id)
_RAG_RANK = {"red": 0, "amber": 1, "green": 2}
_IS_CRITICAL = case((AlertRow.type.in_(sorted(CRITICAL_TYPES)), 1), else_=0)
_IS_URGENT = case((AlertRow.type.in_(sorted(URGENT_TYPES)), 1), else_=0)
_IS_UNACKNOWLEDGED = case((AlertRow.status == "open", 1), else_=0)


@dataclass(frozen=True)
class Reason:
    """Alerts of one kind behind a rating: type, whether confirmed (breaches only), how many,
    and the colour the kind gives (:func:`rag_from`)."""

    type: str
    confirmed: bool | None
    count: int
    rag: Literal["red", "amber", "green"]

    def __str__(self) -> str:
        """Return e.g. ``Curfew breach (confirmed): 3``."""
        kind = (
            ""
            if self.confirmed is None
            else " (confirmed)"
            if self.confirmed
            else " (not confirmed)"
        )
        return f"{label(self.type)}{kind}: {self.count}"


@dataclass
class ReviewRow:
    """One person on the review sheet: rating and the alerts behind it (counts by kind, reds
    first), open alerts by tier and how many are unacknowledged, the most urgent of them (at most
    ``REVIEW_OPEN_SHOWN``, queue order), last heard."""

    offender_id: str
    rag: Literal["red", "amber", "green"]
    reasons: list[Reason]
    open_by_tier: dict[Tier, int]
    unacknowledged: int
    most_urgent: list
    last_heard: datetime | None

    @property
    def rated_alerts(self) -> int:
        """How many alerts of the period are behind the rating."""
        return sum(r.count for r in self.reasons)

    @property
    def open_alerts(self) -> int:
        """How many alerts are not closed (nor suppressed)."""
        return sum(self.open_by_tier.values())

    @property
    def open_summary(self) -> str:
        """Return e.g. ``2 critical, 1 warning; 1 unacknowledged`` (tiers with none left out)."""
        tiers = ", ".join(f"{n} {t}" for t, n in self.open_by_tier.items() if n)
        return f"{tiers}; {self.unacknowledged} unacknowledged"

    @property
    def more(self) -> int:
        """How many open alerts are not shown."""
        return self.open_alerts - len(self.most_urgent)


def review(session: Session, *, people: list[str], now: datetime) -> list[ReviewRow]:
    """Return the review rows of ``people`` over the last 14 days: reds first, then ambers.

    Nothing is read alert by alert but the few shown: the period's alerts are counted by person
    and type in one scan of their covering index (``confirmed`` and ``suppressed`` are columns
    of it; no details are read), and one windowed read of the open alerts returns each
    person's ``REVIEW_OPEN_SHOWN`` most urgent (``row_number()`` in queue order) with the
    person's open counts alongside (SQLite and PostgreSQL alike).
    """
    since = now - timedelta(days=REVIEW_DAYS)
    kinds: dict[str, dict[tuple[str, bool], int]] = {p: {} for p in people}
    by_tier: dict[str, dict[Tier, int]] = {p: dict.fromkeys(TIERS, 0) for p in people}
    unacknowledged: dict[str, int] = dict.fromkeys(people, 0)
    shown: dict[str, list] = {p: [] for p in people}
    for chunk in _chunks(people, 500):
        # Counts by person and type in the order of their covering index (no sort, no row
        # read); confirmed breaches counted alongside; suppressed breaches are not behind a
        # rating.
        for person, alert_type, n, n_confirmed in session.execute(
            select(
                AlertRow.offender_id,
                AlertRow.type,
                func.count(),
                func.count().filter(AlertRow.confirmed),
            )
            .where(
                AlertRow.offender_id.in_(chunk),
                AlertRow.type.in_(RAG_TYPES),
                AlertRow.occurred_at >= since,
                or_(AlertRow.type.not_in(sorted(BREACH_TYPES)), ~AlertRow.suppressed),
            )
            .group_by(AlertRow.offender_id, AlertRow.type)
        ):
            if alert_type not in BREACH_TYPES:
                kinds[person][(alert_type, False)] = n
                continue
            if n_confirmed:
                kinds[person][(alert_type, True)] = n_confirmed
            if n > n_confirmed:
                kinds[person][(alert_type, False)] = n - n_confirmed
        # The few most urgent open alerts per person, each carrying the person's open counts
        # (window aggregates over the same rows: one read of the open alerts).
        person = {"partition_by": AlertRow.offender_id}
        ranked = (
            select(
                AlertRow.offender_id,
                AlertRow.alert_id,
                AlertRow.type,
                AlertRow.occurred_at,
                AlertRow.status,
                AlertRow.episode_end,
                AlertRow.escalation_level,
                func.row_number().over(order_by=_URGENCY, **person).label("n"),
                func.count().over(**person).label("n_open"),
                func.sum(_IS_CRITICAL).over(**person).label("n_critical"),
                func.sum(_IS_URGENT).over(**person).label("n_urgent"),
                func.sum(_IS_UNACKNOWLEDGED).over(**person).label("n_unacknowledged"),
            )
            .where(AlertRow.offender_id.in_(chunk), *_OPEN)
            .subquery()
        )
        for row in session.execute(
            select(ranked).where(ranked.c.n <= REVIEW_OPEN_SHOWN).order_by(ranked.c.n)
        ):
            if row.n == 1:
                by_tier[row.offender_id] = {
                    "critical": row.n_critical,
                    "urgent": row.n_urgent,
                    "warning": row.n_open - row.n_critical - row.n_urgent,
                }
                unacknowledged[row.offender_id] = row.n_unacknowledged
            shown[row.offender_id].append(row)
    heard = last_heard(session, people)
    rows = [
        ReviewRow(
            p,
            rag_from(set(kinds[p])),
            _reasons(kinds[p]),
            by_tier[p],
            unacknowledged[p],
            shown[p],
            heard.get(p),
        )
        for p in people
    ]
    return sorted(rows, key=lambda r: (_RAG_RANK[r.rag], r.offender_id))


@cache
def _kind(alert_type: str, confirmed: bool) -> tuple[bool | None, Literal["red", "amber", "green"]]:
    """Return how a kind of alert shows behind a rating: confirmed (breaches only) and colour."""
    return (confirmed if alert_type in BREACH_TYPES else None), rag_from({(alert_type, confirmed)})


def _reasons(kinds: dict[tuple[str, bool], int]) -> list[Reason]:
    """Return the kinds behind a rating, reds first, then the most numerous."""
    out = []
    for (alert_type, c), n in kinds.items():
        confirmed, rag = _kind(alert_type, c)
        out.append(Reason(alert_type, confirmed, n, rag))
    return sorted(out, key=lambda r: (_RAG_RANK[r.rag], -r.count, r.type, not r.confirmed))


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[i : i + n] for i in range(0, len(items), n)] or [[]]


def last_heard(session: Session, people: list[str]) -> dict[str, datetime]:
    """Return person → time of the latest fix from a device they wear now (one statement; an
    indexed max per device)."""
    latest = (
        select(func.max(Fix.ts_ms))
        .where(Fix.device_id == DeviceAssignment.device_id)
        .correlate(DeviceAssignment)
        .scalar_subquery()
    )
    out: dict[str, datetime] = {}
    for chunk in _chunks(people, 500):
        for offender_id, ms in session.execute(
            select(DeviceAssignment.offender_id, latest).where(
                DeviceAssignment.offender_id.in_(chunk), DeviceAssignment.unassigned_at.is_(None)
            )
        ):
            if ms is not None and (offender_id not in out or from_ms(ms) > out[offender_id]):
                out[offender_id] = from_ms(ms)
    return out


@dataclass(frozen=True)
class LastFix:
    """The latest fix of a person (from a device they wear now)."""

    device_id: str
    ts: datetime
    lat: float
    lon: float
    accuracy_m: float
    battery_pct: float | None


def last_fix(session: Session, offender_id: str) -> LastFix | None:
    """Return the person's latest fix from a device they wear now, or None."""
    best = None
    for device_id in session.scalars(
        select(DeviceAssignment.device_id).where(
            DeviceAssignment.offender_id == offender_id, DeviceAssignment.unassigned_at.is_(None)
        )
    ):
        row = session.execute(
            select(Fix.ts_ms, Fix.lat, Fix.lon, Fix.accuracy_m, Fix.battery_pct)
            .where(Fix.device_id == device_id)
            .order_by(Fix.ts_ms.desc())
            .limit(1)
        ).first()
        if row is not None and (best is None or row.ts_ms > best[1].ts_ms):
            best = (device_id, row)
    if best is None:
        return None
    d, r = best
    return LastFix(d, from_ms(r.ts_ms), r.lat, r.lon, r.accuracy_m, r.battery_pct)


def latest_of(session: Session, offender_id: str, types: list[str]) -> AlertRow | None:
    """Return the person's latest alert of one of ``types`` (e.g. strap tamper/restored)."""
    return session.scalars(
        select(AlertRow)
        .where(AlertRow.offender_id == offender_id, AlertRow.type.in_(types))
        .order_by(AlertRow.occurred_at.desc())
        .limit(1)
    ).first()


def history(session: Session, offender_id: str, limit: int = 200) -> list[AlertRow]:
    """Return the person's alerts, newest first."""
    return list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.offender_id == offender_id)
            .order_by(AlertRow.occurred_at.desc())
            .limit(limit)
        )
    )


def alerts_between(session: Session, offender_id: str, t0: datetime, t1: datetime) -> list:
    """Return the person's alerts with a location that occurred in ``[t0, t1]``."""
    return list(
        session.scalars(
            select(AlertRow)
            .where(
                AlertRow.offender_id == offender_id,
                AlertRow.occurred_at >= t0,
                AlertRow.occurred_at <= t1,
                AlertRow.lat.is_not(None),
            )
            .order_by(AlertRow.occurred_at)
        )
    )
