"""Tables (SQLAlchemy 2 declarative). The first migration creates exactly these.

Trail rows (``fixes``, ``alcohol_readings``) keep event time as integer epoch milliseconds UTC
(``ts_ms``): compact, exact, portable and cheap to index; the device sequence number is ``-1``
when the device sends none, so ``(device_id, ts_ms, seq)`` is a real unique key. Every other time
is an aware UTC :class:`~em_service.store.types.UtcDateTime`. On PostgreSQL both trail tables are
partitioned by month of ``ts_ms`` (migration 0009, :mod:`.partitions`), their primary key there
being ``(id, ts_ms)``. What holds a location and how long: :mod:`.retention`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from em_service.store.types import UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
#: An auto-incrementing 64-bit key (SQLite's INTEGER PRIMARY KEY is its rowid).
BigId = BigInteger().with_variant(Integer, "sqlite")
IDENT = 64
ALERT_ID = 80


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --- Trail archive ------------------------------------------------------------------------


class Fix(Base):
    """A GPS fix as received, plus projected metres and its spatial-index cell."""

    __tablename__ = "fixes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(IDENT))
    ts_ms: Mapped[int] = mapped_column(BigInteger, doc="event time, epoch ms UTC")
    seq: Mapped[int] = mapped_column(BigInteger, doc="device sequence number, -1 if none")
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    accuracy_m: Mapped[float] = mapped_column(Double)
    speed_mps: Mapped[float | None] = mapped_column(Double)
    heading_deg: Mapped[float | None] = mapped_column(Double)
    battery_pct: Mapped[float | None] = mapped_column(Double)
    x_m: Mapped[float] = mapped_column(Double, doc="easting in the projected CRS, m")
    y_m: Mapped[float] = mapped_column(Double, doc="northing in the projected CRS, m")
    cell: Mapped[int] = mapped_column(BigInteger, doc="see em_service.store.spatial_index")

    __table_args__ = (
        # PostgreSQL: INCLUDE makes a scene search's two reads index-only (migration 0010).
        UniqueConstraint(
            "device_id",
            "ts_ms",
            "seq",
            postgresql_include=["x_m", "y_m", "accuracy_m", "lon", "lat"],
        ),
        Index(
            "ix_fixes_cell_ts",
            "cell",
            "ts_ms",
            postgresql_include=["device_id", "seq", "x_m", "y_m"],
        ),
        Index("ix_fixes_ts", "ts_ms"),
    )


class AlcoholSample(Base):
    """A transdermal alcohol reading as received."""

    __tablename__ = "alcohol_readings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(IDENT))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    tac_g_dl: Mapped[float] = mapped_column(Double)
    skin_temp_c: Mapped[float] = mapped_column(Double)
    ir_value: Mapped[float] = mapped_column(Double)
    ir_contact: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("device_id", "ts_ms", "seq"),
        Index("ix_alcohol_readings_ts", "ts_ms"),
    )


# --- Offenders and devices ----------------------------------------------------------------


class Offender(Base):
    """A person under monitoring; ``conditions_json`` is their conditions message in force.

    ``conditions_version`` is its version id; ``conditions_partition``/``_offset``/
    ``_published_at`` the place on the conditions topic of the newest record applied (older ones
    are not applied again).
    ``conditions_rejected_*`` describe the newest version the worker refuses (cleared by a newer
    valid one).
    """

    __tablename__ = "offenders"
    offender_id: Mapped[str] = mapped_column(String(IDENT), primary_key=True)
    conditions_json: Mapped[str | None] = mapped_column(Text)
    conditions_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    conditions_version: Mapped[str | None] = mapped_column(String(16))
    conditions_partition: Mapped[int | None] = mapped_column(Integer)
    conditions_offset: Mapped[int | None] = mapped_column(BigInteger)
    conditions_published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    conditions_rejected_version: Mapped[str | None] = mapped_column(String(16))
    conditions_rejected_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    conditions_rejected_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    conditions_rejected_reason: Mapped[str | None] = mapped_column(Text)


class DeviceAssignment(Base):
    """Who wore a device when: fixes belong to an offender only inside these intervals."""

    __tablename__ = "device_assignments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(IDENT), index=True)
    offender_id: Mapped[str] = mapped_column(
        ForeignKey("offenders.offender_id", ondelete="CASCADE"), index=True
    )
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    unassigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# --- Alerts -------------------------------------------------------------------------------


class AlertRow(Base):
    """An alert from ``em.alerts`` and where it is in its lifecycle (open → acknowledged → closed).

    An ``…_ended`` message does not make a row of its own: it sets ``episode_end`` and
    ``ended_alert_id`` on the alert it names (only an orphan, whose alert is unknown, is kept as
    a row so that nothing is lost).
    """

    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(ALERT_ID), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8))
    offender_id: Mapped[str] = mapped_column(String(IDENT))
    device_id: Mapped[str | None] = mapped_column(String(IDENT))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    accuracy_m: Mapped[float | None] = mapped_column(Double)
    zone_id: Mapped[str | None] = mapped_column(String(IDENT))
    curfew_id: Mapped[str | None] = mapped_column(String(IDENT))
    scene_id: Mapped[str | None] = mapped_column(String(IDENT))
    episode_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    episode_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ref_alert_id: Mapped[str | None] = mapped_column(String(ALERT_ID), index=True)
    ended_alert_id: Mapped[str | None] = mapped_column(String(ALERT_ID))
    late: Mapped[bool] = mapped_column(Boolean)
    details_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    escalation_level: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", doc="0, or the last escalation (1, 2) raised"
    )
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Two facts of ``details`` as columns, set on insert (details never change afterwards), so
    # that the queue and the caseload review filter and count from an index (migration 0011).
    confirmed: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        doc="the review's confirmed breach: evidence definite (without evidence: severity "
        "high); see confirmed_of",
    )
    suppressed: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        doc="a rule suspension (an approved absence) suppressed this alert; see suppressed_of",
    )

    __table_args__ = (
        # Covering for the person's history and the queue.
        Index(
            "ix_alerts_offender_occurred_cover",
            "offender_id",
            "occurred_at",
            "type",
            "severity",
            "status",
            "episode_end",
        ),
        Index("ix_alerts_status_occurred", "status", "occurred_at"),
        Index("ix_alerts_occurred", "occurred_at"),
        # Covering for the caseload review's counts: by person and type in index order, over a
        # period, confirmed counted and suppressed left out without reading a row.
        Index(
            "ix_alerts_offender_type_occurred",
            "offender_id",
            "type",
            "occurred_at",
            "confirmed",
            "suppressed",
        ),
    )


def confirmed_of(details: dict, severity: str) -> bool:
    """Return whether an alert with these details and severity is confirmed (``alerts.confirmed``):
    its ``details.evidence`` is ``definite``, or it has no evidence and its severity is high.
    The caseload review rates a confirmed breach red, any other amber."""
    evidence = details.get("evidence")
    return evidence == "definite" if evidence else severity == "high"


def suppressed_of(details: dict) -> bool:
    """Return whether a rule suspension suppressed an alert with these details
    (``alerts.suppressed``: ``details.suppressed`` is set)."""
    return bool(details.get("suppressed"))


class AlertTransition(Base):
    """One lifecycle step of an alert: who moved it, when, from what to what, and why."""

    __tablename__ = "alert_transitions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class AlertEvent(Base):
    """Outbox of alert changes (created, ended, acknowledged, closed, escalated): the id is the
    SSE event id and the webhook cursor, so streams resume exactly where they stopped.
    ``level`` is the escalation level of an ``escalated`` event (else None)."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"))
    offender_id: Mapped[str] = mapped_column(String(IDENT))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    level: Mapped[int | None] = mapped_column(Integer)


# --- Principals, tokens, caseloads --------------------------------------------------------


class Principal(Base):
    """Someone (or something) that calls the API, with one role."""

    __tablename__ = "principals"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token, stored only as the SHA-256 of its text."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Refused from this instant on (renewable until revoked).
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CaseloadEntry(Base):
    """An offender on a principal's caseload (officers see only these)."""

    __tablename__ = "caseloads"
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    offender_id: Mapped[str] = mapped_column(String(IDENT), primary_key=True, index=True)


class ConsoleSessionRow(Base):
    """A console session, shared by every API process. The cookie value is stored only as its
    SHA-256; the CSRF token is derived from the cookie value, so it is not stored either."""

    __tablename__ = "console_sessions"
    sid_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(100), index=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True, doc="created + max")
    purposes_json: Mapped[str] = mapped_column(Text, doc="scene ids whose purpose was recorded")


# --- Audit --------------------------------------------------------------------------------


class AuditEntry(Base):
    """Append-only, hash-chained record of who did or read what (see :mod:`.audit`)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(40))
    offender_id: Mapped[str | None] = mapped_column(String(IDENT), index=True)
    time_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    time_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    purpose: Mapped[str | None] = mapped_column(String(200))
    detail_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The one row naming the last audit entry: appends lock it, verify checks the tail."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


# --- Outlets ------------------------------------------------------------------------------


class OutletCursor(Base):
    """How far an outlet (one webhook target) has delivered ``alert_events``."""

    __tablename__ = "outlet_cursors"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class OutletFailure(Base):
    """An alert event an outlet gave up on after its retries (kept for replay, never lost)."""

    __tablename__ = "outlet_failures"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outlet: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime)
