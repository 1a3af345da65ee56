"""Retention: one definition of how long every location (or what is derived from one) is kept.

:data:`RETAINED` names each table that holds a location (or, like console sessions, personal
data kept only for a while), the columns that do, the time it is aged by, the setting that says
how long it is kept and what happens then; :data:`NO_LOCATION` names the free-text/JSON columns
that could but do not hold one. ``tests/store/test_retention`` walks every table of the models
and fails on a coordinate-like or JSON column in neither, so a new table cannot forget
retention. The decisions:

* Trail (``EM_TRAIL_RETENTION_DAYS``, event time): fixes and alcohol readings are deleted — on
  PostgreSQL whole month partitions older than the cutoff are detached and dropped and rows are
  deleted only in the month that straddles it (and the DEFAULT partition); on SQLite rows are
  deleted in batches. Alerts are kept for accountability (who was alerted of what, when), but
  their location (lat, lon, accuracy) is erased at the same cutoff, by ``occurred_at``.
* Scenes (``EM_SCENE_RETENTION_DAYS``, default the trail's): a crime scene is a victim's
  address and its matches copy fixes as evidence (up to ``evidence_max_fixes`` each). A scene,
  its matches (closest position, evidence, pending alert) and the batch crimes that made it go
  once their *earliest* possible data is past the cutoff: ``window_start`` minus the search pad
  and gap (``EM_SCENES_TIME_PAD_S`` + ``EM_SCENES_MAX_GAP_S``), so no evidence fix outlives it.
  A crime batch (its rejection reasons quote bad rows' fields) goes by ``updated_at``; the batch
  files kept in the drop folder's ``done/`` and ``rejected/`` by their modification time.
* Console sessions (``EM_CONSOLE_SESSION_MAX_S``, by ``expires_at``, against the wall clock
  even in a replay): a session holds who signed in and the scenes whose purpose they gave; a
  session past ``expires_at`` is deleted (one that ended idle goes then too, at most
  ``EM_CONSOLE_SESSION_MAX_S`` after sign-in; a sign-in deletes it earlier).
* Kept: an offender's conditions in force (zones; replaced, never versioned) while they exist.
  The audit log holds no location (ids, counts, time ranges; it is append-only).

Each run is audited with its counts. Deletes and updates go in batches, so every write
transaction stays short and the archiver and the API never wait long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import Table, delete, func, select, update

import em_service.scenes.batches.store  # noqa: F401  (registers the scene and batch tables)
from em_service.clock import wall_now
from em_service.settings import Settings
from em_service.store import audit, partitions
from em_service.store.db import Store
from em_service.store.models import AlcoholSample, AlertRow, Base, Fix
from em_service.store.types import to_ms

BATCH_ROWS = 20_000
TRAIL, SCENES = "trail_retention_days", "scene_retention_days"
SESSIONS = "console_session_max_s"


@dataclass(frozen=True, slots=True)
class Retained:
    """How one table's locations are retained."""

    table: str
    columns: tuple[str, ...]  #: columns that hold a location or something derived from one
    aged_by: str  #: the time column (``via`` another table's, if set)
    setting: str | None  #: Settings field saying how long it is kept (None: kept, see ``note``)
    action: Literal["delete", "erase", "kept"]  #: delete rows, or null ``columns``, or keep
    note: str
    via: tuple[str, str] | None = None  #: (our column, other table) joined on its key
    #: aged by a scene window's start, less the search pad and gap (:func:`scene_margin`)
    margin: bool = False


RETAINED: tuple[Retained, ...] = (
    Retained(
        "fixes",
        ("lat", "lon", "accuracy_m", "x_m", "y_m", "cell", "speed_mps", "heading_deg"),
        "ts_ms",
        TRAIL,
        "delete",
        "the trail; PostgreSQL drops whole month partitions",
    ),
    Retained(
        "alcohol_readings", (), "ts_ms", TRAIL, "delete", "trail readings (no position), as fixes"
    ),
    Retained(
        "alerts",
        ("lat", "lon", "accuracy_m"),
        "occurred_at",
        TRAIL,
        "erase",
        "the alert is kept for accountability, its location erased",
    ),
    Retained(
        "scene_matches",
        ("closest_lat", "closest_lon", "evidence_json", "pending_alert_json"),
        "window_start",
        SCENES,
        "delete",
        "evidence copies fixes; goes with its scene",
        via=("scene_id", "scenes"),
        margin=True,
    ),
    Retained(
        "crime_batch_crimes",
        ("lat", "lon", "easting", "northing", "radius_m", "crime_text"),
        "time_from",
        SCENES,
        "delete",
        "the crime's place as the force sent it",
        margin=True,
    ),
    Retained(
        "scenes",
        ("lat", "lon", "x_m", "y_m", "radius_m"),
        "window_start",
        SCENES,
        "delete",
        "a crime scene is an address",
        margin=True,
    ),
    Retained(
        "crime_batches",
        ("rejections_json",),
        "updated_at",
        SCENES,
        "delete",
        "rejection reasons quote a bad row's fields; its runs and crimes go with it",
    ),
    Retained(
        "console_sessions",
        (),
        "expires_at",
        SESSIONS,
        "delete",
        "who signed in and the scenes whose purpose they gave; deleted once expired",
    ),
    Retained(
        "offenders",
        ("conditions_json",),
        "conditions_updated_at",
        None,
        "kept",
        "the conditions in force (zones) are needed while the person is monitored; an update "
        "replaces them, no version is kept",
    ),
)
#: Files on disk holding locations: (what, setting) — aged by modification time.
RETAINED_FILES = (("crime batch drop folder: done/ and rejected/", SCENES),)
#: JSON/free-text columns that could hold a location and do not (checked by the tests).
NO_LOCATION: dict[str, tuple[str, ...]] = {
    "alerts": ("details_json",),  # rule details: ids, distances, windows, never coordinates
    "alert_transitions": ("note",),
    "audit_log": ("detail_json", "purpose"),  # ids, counts, hashes, crime references
    "offenders": ("conditions_rejected_reason",),
    "outlet_failures": ("last_error",),
    "scenes": ("search_json",),  # counts and the search radius
    "crime_batch_runs": ("parameters_json", "results_json", "changes_json"),  # ids, confidences
    "console_sessions": ("purposes_json",),  # scene ids with a purpose; rows go once expired
}


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a retention run removed, and the cutoffs it used."""

    cutoff: datetime
    scene_cutoff: datetime
    session_cutoff: datetime  #: console sessions expiring before it were deleted (wall clock)
    counts: dict[str, int]
    partitions_dropped: tuple[str, ...] = ()

    def cutoff_for(self, retained: Retained) -> datetime:
        """Return the time before which ``retained``'s table holds no location after this run."""
        if retained.setting == SESSIONS:
            return self.session_cutoff
        base = self.cutoff if retained.setting == TRAIL else self.scene_cutoff
        return base + scene_margin() if retained.margin else base

    @property
    def fixes_deleted(self) -> int:
        return self.counts["fixes"]

    @property
    def alcohol_deleted(self) -> int:
        return self.counts["alcohol_readings"]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _delete_batched(store: Store, table: Table, where: object, key: str) -> int:
    """Delete the rows matching ``where`` ``BATCH_ROWS`` at a time (by ``key``)."""
    deleted = 0
    column = table.c[key]
    while True:
        with store.write() as session:
            ids = select(column).where(where).limit(BATCH_ROWS).scalar_subquery()
            n = session.execute(delete(table).where(where, column.in_(ids))).rowcount
        deleted += n
        if n < BATCH_ROWS:
            return deleted


def _purge_trail(store: Store, model: type[Fix] | type[AlcoholSample], cutoff_ms: int):
    dropped, rows = partitions.drop_before(store, model.__tablename__, cutoff_ms)
    rows += _delete_batched(store, model.__table__, model.ts_ms < cutoff_ms, "id")
    return dropped, rows


def _erase_alert_locations(store: Store, cutoff: datetime) -> int:
    erased = 0
    where = (AlertRow.occurred_at < cutoff) & (
        AlertRow.lat.is_not(None) | AlertRow.lon.is_not(None) | AlertRow.accuracy_m.is_not(None)
    )
    while True:
        with store.write() as session:
            ids = select(AlertRow.alert_id).where(where).limit(BATCH_ROWS).scalar_subquery()
            n = session.execute(
                update(AlertRow)
                .where(AlertRow.alert_id.in_(ids))
                .values(lat=None, lon=None, accuracy_m=None)
                .execution_options(synchronize_session=False)
            ).rowcount
        erased += n
        if n < BATCH_ROWS:
            return erased


def _purge_scenes(store: Store, cutoff: datetime) -> dict[str, int]:
    """Delete scenes (and their matches and batch crimes) whose earliest possible data is
    before ``cutoff``, and crime batches last received before it."""
    scenes = _table("scenes")
    old = scenes.c.window_start < cutoff + scene_margin()
    old_ids = select(scenes.c.scene_id).where(old)
    matches = _table("scene_matches")
    crimes = _table("crime_batch_crimes")
    batches = _table("crime_batches")
    old_crimes = (crimes.c.time_from < cutoff + scene_margin()) | crimes.c.scene_id.in_(old_ids)
    with store.write() as session:
        return {
            "scene_matches": session.execute(
                delete(matches).where(matches.c.scene_id.in_(old_ids))
            ).rowcount,
            "crime_batch_crimes": session.execute(delete(crimes).where(old_crimes)).rowcount,
            "scenes": session.execute(delete(scenes).where(old)).rowcount,
            "crime_batches": session.execute(
                delete(batches).where(batches.c.updated_at < cutoff)
            ).rowcount,
        }


def _purge_sessions(store: Store, wall: datetime) -> int:
    """Delete the console sessions that expired before ``wall`` (an idle one at its
    ``expires_at`` too)."""
    sessions = _table("console_sessions")
    return _delete_batched(store, sessions, sessions.c.expires_at < wall, "sid_sha256")


def _purge_files(folder: Path | None, cutoff: datetime) -> int:
    if folder is None:
        return 0
    removed = 0
    limit = cutoff.timestamp()
    for sub in ("done", "rejected"):
        for path in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed


def scene_margin() -> timedelta:
    """How far before a scene's window its evidence may reach (search pad + interpolation gap)."""
    from em_service.scenes.config import get_scene_settings

    s = get_scene_settings()
    return timedelta(seconds=s.time_pad_s + s.max_gap_s)


def periods(settings: Settings) -> dict[str, timedelta]:
    """Return the ``older_than`` and ``scene_older_than`` of the settings."""
    trail = timedelta(days=settings.trail_retention_days)
    scenes = settings.scene_retention_days
    return {
        "older_than": trail,
        "scene_older_than": trail if scenes is None else timedelta(days=scenes),
    }


def purge_trail(
    store: Store,
    *,
    older_than: timedelta,
    scene_older_than: timedelta | None = None,
    now: datetime | None = None,
    actor: str = "retention",
    drop_folder: Path | None = None,
    wall: datetime | None = None,
) -> RetentionReport:
    """Apply :data:`RETAINED`: trail and alert locations before ``now - older_than``; scenes and
    what derives from them (and batch files in ``drop_folder``) before ``now -
    scene_older_than`` (default ``older_than``); console sessions expired before ``wall`` (the
    wall clock, default ``now``: ``now`` is a replay's event time, sessions expire by the wall).
    Creates the coming month partitions first."""
    if older_than <= timedelta(0) or (scene_older_than or older_than) <= timedelta(0):
        raise ValueError("older_than must be positive")
    now = now or wall_now()
    cutoff = now - older_than
    scene_cutoff = now - (scene_older_than or older_than)
    partitions.maintain(store, now=now)
    cutoff_ms = to_ms(cutoff)
    fix_parts, fixes = _purge_trail(store, Fix, cutoff_ms)
    alc_parts, alcohol = _purge_trail(store, AlcoholSample, cutoff_ms)
    counts = {"fixes": fixes, "alcohol_readings": alcohol}
    counts["alert_locations"] = _erase_alert_locations(store, cutoff)
    counts |= _purge_scenes(store, scene_cutoff)
    counts["batch_files"] = _purge_files(drop_folder, scene_cutoff)
    wall = wall or now
    counts["console_sessions"] = _purge_sessions(store, wall)
    report = RetentionReport(cutoff, scene_cutoff, wall, counts, tuple(fix_parts + alc_parts))
    with store.write() as session:
        audit.append(
            session,
            actor=actor,
            role="system",
            action="retention.purge",
            time_to=cutoff,
            detail={
                **counts,
                "scene_cutoff": scene_cutoff.astimezone(UTC).isoformat(),
                "session_cutoff": wall.astimezone(UTC).isoformat(),
                "partitions_dropped": list(report.partitions_dropped),
            },
        )
    return report


def oldest(store: Store) -> dict[str, datetime | None]:
    """Return, per table of :data:`RETAINED` that is aged, the oldest time still holding a
    location (None: none left) — what a check after retention compares with the cutoffs."""
    from em_service.store.types import from_ms

    out: dict[str, datetime | None] = {}
    with store.read() as session:
        for r in RETAINED:
            if r.action == "kept":
                continue
            table = _table(r.table)
            if r.via is not None:
                other = _table(r.via[1])
                key = next(iter(other.primary_key.columns))
                stmt = select(func.min(other.c[r.aged_by])).select_from(
                    table.join(other, table.c[r.via[0]] == key)
                )
            else:
                stmt = select(func.min(table.c[r.aged_by]))
            if r.action == "erase":
                stmt = stmt.where(func.coalesce(*(table.c[c] for c in r.columns)).is_not(None))
            value = session.scalar(stmt)
            out[r.table] = from_ms(value) if isinstance(value, int) else value
    return out
