"""Offenders: current conditions, which devices they wear since when, and their status.

Status is derived from alerts: an *episode* is an alert of a type that has an ``…_ended``
counterpart (exclusion, inclusion, curfew, silent, curfew unverified) and is open until its
``…_ended`` message arrives. ``in_breach`` if any breach episode is open, else ``silent`` if the
device-silent episode is, else ``compliant``. Closing an alert (a human decision) does not end
an episode (a machine fact). ``conditions_rejected`` (after ``in_breach``) says that the newest
conditions published for the person were refused by the worker's check: an older version (or
none) is still in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple

import msgspec
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.contracts import ALERT_TYPES, Conditions
from em_service.contracts.codec import encode
from em_service.rules.monitoring import status_at
from em_service.store.models import AlertRow, DeviceAssignment, Offender
from em_service.store.trail import last_fix_at
from em_service.store.types import insert_ignore

EPISODE_TYPES = frozenset(t.removesuffix("_ended") for t in ALERT_TYPES if t.endswith("_ended"))
SILENT_TYPE = "device_silent"
#: When a device first seen in conditions is assigned without ``valid_from``: from the start.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
Status = Literal["compliant", "in_breach", "conditions_rejected", "silent"]


class DeviceConflict(ValueError):
    """A device in new conditions is currently worn by someone else."""


@dataclass(frozen=True, slots=True)
class Episode:
    """An open episode: the alert that opened it."""

    alert_id: str
    type: str
    started_at: datetime
    zone_id: str | None
    curfew_id: str | None


class Position(NamedTuple):
    """A conditions record's place on the topic, and its timestamp (a recreated topic starts
    again at offset 0, with newer timestamps)."""

    partition: int
    offset: int
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RejectedConditions:
    """The newest conditions version the worker refuses, and why."""

    version: str
    updated_at: datetime | None
    rejected_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class OffenderState:
    """What the API reports about one offender."""

    offender_id: str
    status: Status
    device_ids: list[str]
    open_episodes: list[Episode]
    open_alerts: int
    last_fix_at: datetime | None
    conditions_updated_at: datetime | None
    conditions_version: str | None = None
    conditions_rejected: RejectedConditions | None = None
    monitoring: MonitoringState | None = None
    suspensions: tuple[SuspensionState, ...] = ()


@dataclass(frozen=True, slots=True)
class MonitoringState:
    """The monitoring status in force now (``status``) and as the conditions declare it."""

    status: str
    declared: str
    reason: str | None
    from_: datetime | None
    until: datetime | None
    approved_by: str | None


@dataclass(frozen=True, slots=True)
class SuspensionState:
    """A single-rule suspension (approved absence) not yet over; ``active``: in force now."""

    suspension_id: str
    subject_id: str
    from_: datetime
    until: datetime
    reason: str
    approved_by: str
    active: bool


def monitoring_of(
    offender: Offender, now: datetime
) -> tuple[MonitoringState | None, tuple[SuspensionState, ...]]:
    """Return the offender's monitoring status at ``now`` and their single-rule suspensions
    that are not over yet (in force or to come), by start; (None, ()) without conditions."""
    if not offender.conditions_json:
        return None, ()
    try:
        c = msgspec.json.decode(offender.conditions_json, type=Conditions)
    except (msgspec.ValidationError, ValueError):  # stored before a stricter contract: unknown
        return None, ()
    m = c.monitoring
    monitoring = MonitoringState(
        status=status_at(c, now),
        declared=m.status,
        reason=m.reason,
        from_=m.from_,
        until=m.until,
        approved_by=m.approved_by,
    )
    suspensions = tuple(
        SuspensionState(
            suspension_id=x.suspension_id,
            subject_id=x.subject_id,
            from_=x.from_,
            until=x.until,
            reason=x.reason,
            approved_by=x.approved_by,
            active=x.from_ <= now,
        )
        for x in sorted(c.suspensions, key=lambda x: (x.from_, x.suspension_id))
        if x.until > now
    )
    return monitoring, suspensions


def ensure_offender(session: Session, offender_id: str, *, now: datetime | None = None) -> None:
    """Create an offender row without conditions if there is none (alerts may come first).

    Insert-or-ignore: two writers (archivers, API) may create the same offender at once.
    """
    if session.get(Offender, offender_id) is None:
        insert = insert_ignore(Offender.__table__, session.get_bind().dialect.name)
        session.execute(insert.values(offender_id=offender_id, created_at=now or wall_now()))


def exists(session: Session, offender_id: str) -> bool:
    """Return True if the offender is known."""
    return session.get(Offender, offender_id) is not None


def current_devices(session: Session, offender_id: str) -> list[str]:
    """Return the devices the offender wears now."""
    return sorted(
        session.scalars(
            select(DeviceAssignment.device_id).where(
                DeviceAssignment.offender_id == offender_id,
                DeviceAssignment.unassigned_at.is_(None),
            )
        )
    )


def device_holders(session: Session, device_ids: list[str]) -> dict[str, str]:
    """Return device_id → offender currently wearing it, for the given devices."""
    rows = session.execute(
        select(DeviceAssignment.device_id, DeviceAssignment.offender_id).where(
            DeviceAssignment.device_id.in_(device_ids), DeviceAssignment.unassigned_at.is_(None)
        )
    )
    return dict(rows.tuples().all())


def put_conditions(
    session: Session,
    *,
    conditions: Conditions,
    changed_at: datetime,
    strict_devices: bool = False,
    version: str | None = None,
    position: Position | None = None,
) -> None:
    """Store ``conditions`` as the offender's current ones and update device assignments.

    ``version`` and ``position`` identify the published record; a rejection recorded before it
    is cleared.

    A device leaving the list is unassigned at ``changed_at``; a new one is assigned from
    ``valid_from`` (or ``changed_at`` if the device was someone else's or is added to a person
    already enrolled, or from the beginning if it is new with the person's first conditions). A device still worn by another offender is taken from them at ``changed_at`` —
    or, with ``strict_devices`` (the API), refused with :class:`DeviceConflict`.
    """
    offender_id = conditions.offender_id
    wanted = set(conditions.device_ids)
    holders = device_holders(session, sorted(wanted))
    taken = {d: o for d, o in holders.items() if o != offender_id}
    if taken and strict_devices:
        raise DeviceConflict("devices worn by another offender: " + ", ".join(sorted(taken)))
    ensure_offender(session, offender_id, now=changed_at)
    offender = session.get(Offender, offender_id)
    enrolled_before = offender.conditions_json is not None
    offender.conditions_json = encode(conditions).decode()
    offender.conditions_updated_at = conditions.updated_at or changed_at
    _set_in_force(offender, version, position)
    for a in session.scalars(
        select(DeviceAssignment).where(
            DeviceAssignment.unassigned_at.is_(None),
            (DeviceAssignment.offender_id == offender_id)
            | DeviceAssignment.device_id.in_(sorted(taken)),
        )
    ):
        if a.offender_id != offender_id or a.device_id not in wanted:
            a.unassigned_at = changed_at
    for device_id in sorted(wanted - {d for d, o in holders.items() if o == offender_id}):
        ever = session.scalar(select(func.count()).where(DeviceAssignment.device_id == device_id))
        start = conditions.valid_from or (changed_at if ever or enrolled_before else BEGINNING)
        session.add(
            DeviceAssignment(device_id=device_id, offender_id=offender_id, assigned_at=start)
        )
    session.flush()


def remove_conditions(
    session: Session, *, offender_id: str, changed_at: datetime, position: Position | None = None
) -> None:
    """Forget the offender's conditions (a tombstone) and unassign their devices."""
    offender = session.get(Offender, offender_id)
    if offender is None:
        return
    offender.conditions_json = None
    offender.conditions_updated_at = changed_at
    _set_in_force(offender, None, position)
    for a in session.scalars(
        select(DeviceAssignment).where(
            DeviceAssignment.offender_id == offender_id, DeviceAssignment.unassigned_at.is_(None)
        )
    ):
        a.unassigned_at = changed_at
    session.flush()


def _set_place(offender: Offender, position: Position | None) -> None:
    if position is not None:
        offender.conditions_partition = position.partition
        offender.conditions_offset = position.offset
        offender.conditions_published_at = position.published_at


def _set_in_force(offender: Offender, version: str | None, position: Position | None) -> None:
    offender.conditions_version = version
    _set_place(offender, position)
    offender.conditions_rejected_version = offender.conditions_rejected_updated_at = None
    offender.conditions_rejected_at = offender.conditions_rejected_reason = None


def reject_conditions(
    session: Session,
    *,
    offender_id: str,
    rejected: RejectedConditions,
    position: Position | None = None,
) -> None:
    """Record that the worker refuses the offender's newest conditions; what was in force stays.

    ``position`` is the rejected record's place on the topic: later records of older places are
    not applied (see :func:`superseded`).
    """
    ensure_offender(session, offender_id, now=rejected.rejected_at)
    offender = session.get(Offender, offender_id)
    offender.conditions_rejected_version = rejected.version
    offender.conditions_rejected_updated_at = rejected.updated_at
    offender.conditions_rejected_at = rejected.rejected_at
    offender.conditions_rejected_reason = rejected.reason
    _set_place(offender, position)
    session.flush()


def superseded(session: Session, offender_id: str, position: Position) -> bool:
    """Return True if a conditions record at ``position`` is not newer than the one applied.

    The API stores what it publishes at once, so the archiver may meet older records later.
    A record with a newer timestamp is applied whatever its offset (a recreated topic).
    """
    offender = session.get(Offender, offender_id)
    if offender is None or offender.conditions_offset is None:
        return False
    if position.partition != offender.conditions_partition:
        return False
    stamp, published = offender.conditions_published_at, position.published_at
    newer = stamp is not None and published is not None and published > stamp
    return position.offset <= offender.conditions_offset and not newer


def _rejected(offender: Offender) -> RejectedConditions | None:
    if offender.conditions_rejected_reason is None or offender.conditions_rejected_at is None:
        return None
    return RejectedConditions(
        version=offender.conditions_rejected_version or "",
        updated_at=offender.conditions_rejected_updated_at,
        rejected_at=offender.conditions_rejected_at,
        reason=offender.conditions_rejected_reason,
    )


def _open_episodes(session: Session, offender_ids: list[str]) -> dict[str, list[Episode]]:
    rows = session.scalars(
        select(AlertRow)
        .where(
            AlertRow.offender_id.in_(offender_ids),
            AlertRow.type.in_(sorted(EPISODE_TYPES)),
            AlertRow.ended_alert_id.is_(None),
            AlertRow.episode_end.is_(None),
        )
        .order_by(AlertRow.occurred_at)
    )
    out: dict[str, list[Episode]] = {o: [] for o in offender_ids}
    for a in rows:
        out[a.offender_id].append(
            Episode(
                alert_id=a.alert_id,
                type=a.type,
                started_at=a.episode_start or a.occurred_at,
                zone_id=a.zone_id,
                curfew_id=a.curfew_id,
            )
        )
    return out


def _status(episodes: list[Episode], rejected: bool = False) -> Status:
    if any(e.type != SILENT_TYPE for e in episodes):
        return "in_breach"
    if rejected:
        return "conditions_rejected"
    return "silent" if episodes else "compliant"


def _open_alert_counts(session: Session, offender_ids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(AlertRow.offender_id, func.count())
        .where(
            AlertRow.offender_id.in_(offender_ids),
            AlertRow.status != "closed",
            ~AlertRow.suppressed,
        )
        .group_by(AlertRow.offender_id)
    )
    return dict(rows.tuples().all())


def _devices(session: Session, offender_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {o: [] for o in offender_ids}
    for device_id, offender_id in session.execute(
        select(DeviceAssignment.device_id, DeviceAssignment.offender_id)
        .where(
            and_(
                DeviceAssignment.offender_id.in_(offender_ids),
                DeviceAssignment.unassigned_at.is_(None),
            )
        )
        .order_by(DeviceAssignment.device_id)
    ):
        out[offender_id].append(device_id)
    return out


def list_offenders(
    session: Session,
    *,
    only: frozenset[str] | None,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> tuple[list[OffenderState], int]:
    """Return one page of offenders (all, or ``only`` these) with status, and the total.

    ``last_fix_at`` is left out of list items (None); :func:`state` reports it. Monitoring and
    suspensions are as at ``now`` (default: the wall clock).
    """
    now = now or wall_now()
    stmt = select(Offender)
    count = select(func.count()).select_from(Offender)
    if only is not None:
        stmt = stmt.where(Offender.offender_id.in_(sorted(only)))
        count = count.where(Offender.offender_id.in_(sorted(only)))
    total = session.scalar(count) or 0
    offenders = session.scalars(stmt.order_by(Offender.offender_id).limit(limit).offset(offset))
    rows = list(offenders)
    ids = [o.offender_id for o in rows]
    episodes, counts, devices = (
        _open_episodes(session, ids),
        _open_alert_counts(session, ids),
        _devices(session, ids),
    )
    return [
        OffenderState(
            offender_id=o.offender_id,
            status=_status(episodes[o.offender_id], o.conditions_rejected_reason is not None),
            device_ids=devices[o.offender_id],
            open_episodes=episodes[o.offender_id],
            open_alerts=counts.get(o.offender_id, 0),
            last_fix_at=None,
            conditions_updated_at=o.conditions_updated_at,
            conditions_version=o.conditions_version,
            conditions_rejected=_rejected(o),
            **_monitoring_fields(o, now),
        )
        for o in rows
    ], total


def _monitoring_fields(offender: Offender, now: datetime) -> dict:
    monitoring, suspensions = monitoring_of(offender, now)
    return {"monitoring": monitoring, "suspensions": suspensions}


def state(
    session: Session, *, offender_id: str, now: datetime | None = None
) -> OffenderState | None:
    """Return the offender's current status (monitoring as at ``now``, default the wall clock),
    or None if unknown."""
    offender = session.get(Offender, offender_id)
    if offender is None:
        return None
    episodes = _open_episodes(session, [offender_id])[offender_id]
    return OffenderState(
        offender_id=offender_id,
        status=_status(episodes, offender.conditions_rejected_reason is not None),
        device_ids=current_devices(session, offender_id),
        open_episodes=episodes,
        open_alerts=_open_alert_counts(session, [offender_id]).get(offender_id, 0),
        last_fix_at=last_fix_at(session, offender_id=offender_id),
        conditions_updated_at=offender.conditions_updated_at,
        conditions_version=offender.conditions_version,
        conditions_rejected=_rejected(offender),
        **_monitoring_fields(offender, now or wall_now()),
    )
