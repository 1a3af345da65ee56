"""Crime batches, their crimes and their matching runs in the database (migration 0004).

A batch (``crime_batches``) is identified by its batch id; a crime (``crime_batch_crimes``) by
(batch id, crime reference): a resent batch updates its rows, never duplicates them. Each
crime is a scene (``scenes``, id :func:`~em_service.scenes.ids.crime_batch_scene_id`) matched
by the archiver like any other. A *run* (``crime_batch_runs``) is one matching of the whole
batch: its trigger (``upload``, ``resend``, ``rerun``, ``late-data``), the algorithm and its
parameters, status and timings, and — when every crime has been searched — the results and
what changed since the batch's previous run.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import Date, Double, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from em_service.contracts import Scene
from em_service.scenes import store as scene_store
from em_service.scenes.batches.format import Crime, Rejection
from em_service.scenes.config import SceneSettings
from em_service.scenes.matching import RULE, MatchConfig
from em_service.store.models import IDENT, Base
from em_service.store.types import UtcDateTime

ALGORITHM = "em-service scene matching v1 (" + hashlib.sha256(RULE.encode()).hexdigest()[:12] + ")"
INTERPOLATION = (
    "straight line at constant speed between consecutive fixes at most max_gap_s apart whose "
    "implied speed is at most max_speed_mps; at_scene needs observed fixes"
)
TRIGGERS = ("upload", "resend", "rerun", "late-data")
_enc = msgspec.json.Encoder()


class CrimeBatchRow(Base):
    """A police force's crime batch as last received."""

    __tablename__ = "crime_batches"
    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    force_code: Mapped[str] = mapped_column(String(16), index=True)
    batch_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16), doc="cli | api | folder")
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_sha256: Mapped[str] = mapped_column(String(64))
    sends: Mapped[int] = mapped_column(Integer)
    rows_received: Mapped[int] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    rejections_json: Mapped[str] = mapped_column(Text, doc="[{line, crime_reference, reason}]")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CrimeBatchCrimeRow(Base):
    """One crime of a batch, as the force sent it (``crime_text`` verbatim, never interpreted)."""

    __tablename__ = "crime_batch_crimes"
    batch_id: Mapped[str] = mapped_column(
        ForeignKey("crime_batches.batch_id", ondelete="CASCADE"), primary_key=True
    )
    crime_reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    scene_id: Mapped[str] = mapped_column(String(IDENT), index=True)
    line: Mapped[int] = mapped_column(Integer)
    type_code: Mapped[str] = mapped_column(String(8))
    type_description: Mapped[str] = mapped_column(String(100))
    time_from: Mapped[datetime] = mapped_column(UtcDateTime)
    time_to: Mapped[datetime] = mapped_column(UtcDateTime)
    datum: Mapped[str] = mapped_column(String(8))
    easting: Mapped[float | None] = mapped_column(Double)
    northing: Mapped[float | None] = mapped_column(Double)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    radius_m: Mapped[float] = mapped_column(Double)
    crime_text: Mapped[str] = mapped_column(Text)
    searched_run_id: Mapped[int | None] = mapped_column(Integer, doc="last run that searched it")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CrimeBatchRunRow(Base):
    """One matching run of a batch, kept with its parameters and results."""

    __tablename__ = "crime_batch_runs"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(
        ForeignKey("crime_batches.batch_id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(80))
    parameters_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), doc="running | done | superseded")
    crimes: Mapped[int] = mapped_column(Integer)
    crimes_searched: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    results_json: Mapped[str | None] = mapped_column(Text)
    changes_json: Mapped[str | None] = mapped_column(Text)


def parameters(settings: SceneSettings, radii: dict[str, float]) -> dict[str, Any]:
    """Return the parameters a run records: the rule's, the radius per crime type, the pad."""
    return {
        "radius_m_by_crime_type": dict(sorted(radii.items())),
        "time_pad_s": settings.time_pad_s,
        "interpolation": INTERPOLATION,
        "rule": MatchConfig.of(settings).as_dict(),
    }


# --- Receiving a batch -------------------------------------------------------------------------


def record_batch(
    session: Session,
    batch_id: str,
    crimes: list[Crime],
    rejections: list[Rejection],
    *,
    force_code: str,
    source: str,
    file_name: str | None,
    file_sha256: str,
    params: dict[str, Any],
    now: datetime,
) -> tuple[CrimeBatchRow, CrimeBatchRunRow]:
    """Store (or update) a batch and its crimes and start its run; return (batch, run).

    The trigger is ``upload`` for a new batch, ``resend`` for a known one. Crimes of an
    earlier send that this one omits are kept (a resend corrects, it does not withdraw).
    """
    batch = session.get(CrimeBatchRow, batch_id)
    trigger = "upload" if batch is None else "resend"
    counts = {
        "rows_received": len(crimes) + len(rejections),
        "rows_accepted": len(crimes),
        "rows_rejected": len(rejections),
        "rejections_json": _enc.encode([r.as_dict() for r in rejections]).decode(),
        "source": source,
        "file_name": (file_name or None) and file_name[:200],
        "file_sha256": file_sha256,
        "updated_at": now,
    }
    if batch is None:
        force, day = force_code, datetime.strptime(batch_id[-8:], "%Y%m%d").date()
        batch = CrimeBatchRow(
            batch_id=batch_id, force_code=force, batch_date=day, sends=1, received_at=now, **counts
        )
        session.add(batch)
    else:
        for k, v in counts.items():
            setattr(batch, k, v)
        batch.sends += 1
    session.flush()
    known = {
        r.crime_reference: r
        for r in session.scalars(
            select(CrimeBatchCrimeRow).where(CrimeBatchCrimeRow.batch_id == batch_id)
        )
    }
    for c in crimes:
        values = {
            "scene_id": c.scene.scene_id,
            "line": c.line,
            "type_code": c.type_code,
            "type_description": c.type_description,
            "time_from": c.time_from,
            "time_to": c.time_to,
            "datum": c.datum,
            "easting": c.easting,
            "northing": c.northing,
            "lat": c.lat,
            "lon": c.lon,
            "radius_m": c.scene.radius_m,
            "crime_text": c.crime_text,
            "updated_at": now,
        }
        row = known.get(c.crime_reference)
        if row is None:
            row = CrimeBatchCrimeRow(batch_id=batch_id, crime_reference=c.crime_reference, **values)
            session.add(row)
            known[c.crime_reference] = row
        else:
            for k, v in values.items():
                setattr(row, k, v)
    session.flush()
    return batch, start_run(session, batch_id, trigger, params=params, now=now)


def start_run(
    session: Session, batch_id: str, trigger: str, *, params: dict[str, Any], now: datetime
) -> CrimeBatchRunRow:
    """Start a run of every crime of the batch (a running one is superseded)."""
    session.execute(
        update(CrimeBatchRunRow)
        .where(CrimeBatchRunRow.batch_id == batch_id, CrimeBatchRunRow.status == "running")
        .values(status="superseded", finished_at=now)
    )
    n = session.scalar(
        select(func.count())
        .select_from(CrimeBatchCrimeRow)
        .where(CrimeBatchCrimeRow.batch_id == batch_id)
    )
    run = CrimeBatchRunRow(
        batch_id=batch_id,
        trigger=trigger,
        algorithm=ALGORITHM,
        parameters_json=_enc.encode(params).decode(),
        status="running",
        crimes=n or 0,
        crimes_searched=0,
        started_at=now,
    )
    session.add(run)
    session.flush()
    if not n:
        _finish(session, run, now=now)
    return run


# --- Runs progressing (the archiver, after each scene search) --------------------------------


def results(session: Session, batch_id: str) -> dict[str, dict[str, str]]:
    """Return crime reference → {offender: confidence} of the batch's stored matches."""
    rows = session.execute(
        select(
            CrimeBatchCrimeRow.crime_reference,
            scene_store.SceneMatchRow.offender_id,
            scene_store.SceneMatchRow.confidence,
        )
        .join(
            scene_store.SceneMatchRow,
            scene_store.SceneMatchRow.scene_id == CrimeBatchCrimeRow.scene_id,
        )
        .where(CrimeBatchCrimeRow.batch_id == batch_id)
    )
    out: dict[str, dict[str, str]] = {}
    for ref, offender, confidence in rows.tuples():
        out.setdefault(ref, {})[offender] = confidence
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def changes(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[dict]:
    """Return what changed between two results: one entry per (crime, offender)."""
    out = []
    for ref in sorted(set(before) | set(after)):
        b, a = before.get(ref, {}), after.get(ref, {})
        for offender in sorted(set(b) | set(a)):
            if b.get(offender) != a.get(offender):
                out.append(
                    {
                        "crime_reference": ref,
                        "offender_id": offender,
                        "before": b.get(offender),
                        "after": a.get(offender),
                    }
                )
    return out


def _last_done(session: Session, batch_id: str, before_run: int) -> CrimeBatchRunRow | None:
    return session.scalars(
        select(CrimeBatchRunRow)
        .where(
            CrimeBatchRunRow.batch_id == batch_id,
            CrimeBatchRunRow.status == "done",
            CrimeBatchRunRow.run_id < before_run,
        )
        .order_by(CrimeBatchRunRow.run_id.desc())
        .limit(1)
    ).first()


def _finish(
    session: Session, run: CrimeBatchRunRow, *, now: datetime, params: dict | None = None
) -> None:
    after = results(session, run.batch_id)
    previous = _last_done(session, run.batch_id, run.run_id)
    before = (
        msgspec.json.decode(previous.results_json) if previous and previous.results_json else {}
    )
    run.status = "done"
    run.finished_at = now
    run.results_json = _enc.encode(after).decode()
    run.changes_json = _enc.encode(changes(before, after)).decode()
    if params is not None:
        run.parameters_json = _enc.encode(params).decode()


def note_searched(
    session: Session, scene_id: str, *, now: datetime, late: bool, params: dict[str, Any]
) -> CrimeBatchRunRow | None:
    """Count a scene search towards its batch's running run; return the run if it finished.

    A search outside any run that was caused by late fixes (``late``: the archiver re-matching
    after a live match) is recorded as a ``late-data`` run of its own, with what changed.
    ``params`` are those of the process that searched (recorded when the run finishes).
    """
    crime = session.scalars(
        select(CrimeBatchCrimeRow).where(CrimeBatchCrimeRow.scene_id == scene_id).limit(1)
    ).first()
    if crime is None:
        return None
    run = session.scalars(
        select(CrimeBatchRunRow).where(
            CrimeBatchRunRow.batch_id == crime.batch_id, CrimeBatchRunRow.status == "running"
        )
    ).first()
    if run is None:
        if not late:
            return None
        run = CrimeBatchRunRow(
            batch_id=crime.batch_id,
            trigger="late-data",
            algorithm=ALGORITHM,
            parameters_json=_enc.encode(params).decode(),
            status="running",
            crimes=1,
            crimes_searched=1,
            started_at=now,
        )
        session.add(run)
        session.flush()
        crime.searched_run_id = run.run_id
        _finish(session, run, now=now)
        return run
    if crime.searched_run_id != run.run_id:
        crime.searched_run_id = run.run_id
        session.flush()
        run.crimes_searched = session.scalar(
            select(func.count())
            .select_from(CrimeBatchCrimeRow)
            .where(
                CrimeBatchCrimeRow.batch_id == run.batch_id,
                CrimeBatchCrimeRow.searched_run_id == run.run_id,
            )
        )
    if run.crimes_searched >= run.crimes:
        _finish(session, run, now=now, params=params)
        session.flush()
        return run
    session.flush()
    return None


# --- Reading -----------------------------------------------------------------------------------


def get_batch(session: Session, batch_id: str) -> CrimeBatchRow | None:
    """Return the batch, or None."""
    return session.get(CrimeBatchRow, batch_id)


def list_batches(
    session: Session, *, force: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[CrimeBatchRow], int]:
    """Return one page of batches (latest update first) and the total."""
    conds = [CrimeBatchRow.force_code == force] if force else []
    total = session.scalar(select(func.count()).select_from(CrimeBatchRow).where(*conds)) or 0
    rows = session.scalars(
        select(CrimeBatchRow)
        .where(*conds)
        .order_by(CrimeBatchRow.updated_at.desc(), CrimeBatchRow.batch_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def store_scenes(session: Session, scenes: list[Scene], *, crs: str, now: datetime) -> None:
    """Store a batch's scenes: new ones in one go; known ones through
    :func:`em_service.scenes.store.upsert_scene` (a moved scene drops its old matches)."""
    from geofences.projection import get_projector

    if not scenes:
        return
    ids = [s.scene_id for s in scenes]
    known = set(
        session.scalars(
            select(scene_store.SceneRow.scene_id).where(scene_store.SceneRow.scene_id.in_(ids))
        )
    )
    x, y = get_projector(crs).to_xy([s.lon for s in scenes], [s.lat for s in scenes])
    for scene, xi, yi in zip(scenes, x.tolist(), y.tolist(), strict=True):
        if scene.scene_id in known:
            scene_store.upsert_scene(session, scene, x_m=xi, y_m=yi, now=now)
            continue
        session.add(
            scene_store.SceneRow(
                scene_id=scene.scene_id,
                crime_reference=scene.crime_reference,
                crime_type=scene.crime_type,
                lat=scene.lat,
                lon=scene.lon,
                x_m=xi,
                y_m=yi,
                radius_m=scene.radius_m,
                window_start=scene.window_start,
                window_end=scene.window_end,
                reported_at=scene.reported_at,
                low_precision=scene.low_precision,
                source=scene.source,
                received_at=now,
            )
        )
    session.flush()


def scenes_of(session: Session, batch_id: str) -> list[Scene]:
    """Return the scene messages of every crime of the batch (file order)."""
    rows = session.scalars(
        select(scene_store.SceneRow)
        .join(CrimeBatchCrimeRow, CrimeBatchCrimeRow.scene_id == scene_store.SceneRow.scene_id)
        .where(CrimeBatchCrimeRow.batch_id == batch_id)
        .order_by(CrimeBatchCrimeRow.line, CrimeBatchCrimeRow.crime_reference)
    )
    return [scene_store.scene_message(r) for r in rows]


def crimes_of(session: Session, batch_id: str) -> list[CrimeBatchCrimeRow]:
    """Return the batch's crimes in file order."""
    return list(
        session.scalars(
            select(CrimeBatchCrimeRow)
            .where(CrimeBatchCrimeRow.batch_id == batch_id)
            .order_by(CrimeBatchCrimeRow.line, CrimeBatchCrimeRow.crime_reference)
        )
    )


def runs_of(session: Session, batch_id: str) -> list[CrimeBatchRunRow]:
    """Return the batch's runs, latest first."""
    return list(
        session.scalars(
            select(CrimeBatchRunRow)
            .where(CrimeBatchRunRow.batch_id == batch_id)
            .order_by(CrimeBatchRunRow.run_id.desc())
        )
    )


def run_dict(run: CrimeBatchRunRow) -> dict[str, Any]:
    """Return a run as plain data (JSON-ready)."""
    seconds = (
        (run.finished_at - run.started_at).total_seconds() if run.finished_at is not None else None
    )
    return {
        "run_id": run.run_id,
        "trigger": run.trigger,
        "status": run.status,
        "algorithm": run.algorithm,
        "parameters": msgspec.json.decode(run.parameters_json),
        "crimes": run.crimes,
        "crimes_searched": run.crimes_searched,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": seconds,
        "changes": msgspec.json.decode(run.changes_json) if run.changes_json else None,
    }
