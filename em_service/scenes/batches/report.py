"""The per-batch proximity report: summary, per-crime matches with the positions used, as JSON,
CSV or GeoJSON with the hash-chained manifest of :mod:`em_service.scenes.evidence`.

Records: a header (batch, force, the run that produced the results with its algorithm and
parameters, the record count), the summary (rows received, rejected with reasons, crimes
matched, wearers matched), then per crime a ``crime`` record, per matched wearer a ``match``
record (confidence class, closest approach, dwell) and its ``position`` records (time in UTC
and Europe/London, lat/lon, accuracy as a confidence circle radius, sequence label ``P1``… in
time order). Exclusions are not matches: they are left out of the report. ``crime_text`` is
the force's free text, carried verbatim as data: in CSV it sits inside the JSON ``detail``
cell (which starts with ``{``), so a spreadsheet never runs it as a formula.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.orm import Session

from em_service.scenes import evidence
from em_service.scenes import store as scene_store
from em_service.scenes.batches import store as batch_store
from em_service.scenes.matching import Match

FORMAT = "em-service crime batch report v1"
LONDON = ZoneInfo("Europe/London")


def london(t: datetime) -> str:
    """Return ``t`` in Europe/London local time (ISO 8601 with its offset)."""
    return t.astimezone(LONDON).isoformat()


def _utc(t: datetime | float) -> str:
    if not isinstance(t, datetime):
        t = datetime.fromtimestamp(t, tz=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _times(prefix: str, t: datetime | float) -> dict[str, str]:
    if not isinstance(t, datetime):
        t = datetime.fromtimestamp(t, tz=UTC)
    return {f"{prefix}_utc": _utc(t), f"{prefix}_local": london(t)}


def positions(row: scene_store.SceneMatchRow) -> list[dict[str, Any]]:
    """Return the positions a match used (its evidence fixes), labelled P1… in time order."""
    _kind, found, _cfg = scene_store.load_evidence(row)
    if not isinstance(found, Match):
        return []
    fixes = sorted(found.fixes, key=lambda f: f.ts_s)
    return [
        {
            "record": "position",
            "label": f"P{i}",
            "device_id": f.device_id,
            **_times("time", f.ts_s),
            "lat": f.lat,
            "lon": f.lon,
            "accuracy_m": f.accuracy_m,
            "distance_m": f.distance_m,
            "inside": f.inside,
            "in_window": f.in_window,
        }
        for i, f in enumerate(fixes, start=1)
    ]


def build(session: Session, batch_id: str, *, generated_at: datetime) -> list[dict[str, Any]]:
    """Return the report records of a batch (header first); KeyError if it is unknown."""
    batch = batch_store.get_batch(session, batch_id)
    if batch is None:
        raise KeyError(batch_id)
    runs = batch_store.runs_of(session, batch_id)
    crimes = batch_store.crimes_of(session, batch_id)
    body: list[dict[str, Any]] = []
    matched_crimes, wearers = 0, set()
    for c in crimes:
        matches = [
            m
            for m in scene_store.matches_of_scene(session, c.scene_id)
            if m.confidence != "excluded"
        ]
        matched_crimes += bool(matches)
        wearers |= {m.offender_id for m in matches}
        body.append(
            {
                "record": "crime",
                "crime_reference": c.crime_reference,
                "scene_id": c.scene_id,
                "line": c.line,
                "crime_type": c.type_code,
                "crime_type_description": c.type_description,
                **_times("from", c.time_from),
                **_times("to", c.time_to),
                "datum": c.datum,
                "easting": c.easting,
                "northing": c.northing,
                "lat": c.lat,
                "lon": c.lon,
                "radius_m": c.radius_m,
                "crime_text": c.crime_text,
                "matches": len(matches),
            }
        )
        for m in matches:
            body.append(
                {
                    "record": "match",
                    "crime_reference": c.crime_reference,
                    "offender_id": m.offender_id,
                    "device_id": m.device_id,
                    "confidence": m.confidence,
                    "closest_m": m.closest_m,
                    **_times("closest_at", m.closest_at),
                    "closest_source": m.closest_source,
                    "lat": m.closest_lat,
                    "lon": m.closest_lon,
                    "dwell_s": m.dwell_s,
                    "fixes_inside": m.fixes_inside,
                    "in_window": m.in_window,
                }
            )
            for p in positions(m):
                body.append(
                    {"crime_reference": c.crime_reference, "offender_id": m.offender_id} | p
                )
    summary = {
        "record": "summary",
        "batch_id": batch.batch_id,
        "force_code": batch.force_code,
        "batch_date": batch.batch_date.isoformat(),
        "sends": batch.sends,
        "rows_received": batch.rows_received,
        "rows_accepted": batch.rows_accepted,
        "rows_rejected": batch.rows_rejected,
        "rejections": msgspec.json.decode(batch.rejections_json),
        "crimes": len(crimes),
        "crimes_matched": matched_crimes,
        "wearers_matched": len(wearers),
    }
    run = next((r for r in runs if r.status == "done"), runs[0] if runs else None)
    header = {
        "record": "header",
        "format": FORMAT,
        "algorithm": evidence.ALGORITHM,
        "records": len(body) + 2,
        "batch_id": batch.batch_id,
        **_times("generated_at", generated_at),
        "timezone": "Europe/London",
        "coordinates": "WGS84 degrees; accuracy_m is the radius of a position's confidence circle",
        "run": batch_store.run_dict(run) if run is not None else None,
        "verify": "em-service evidence verify FILE",
    }
    return [header, summary, *body]


def export(records: list[dict[str, Any]], fmt: str) -> tuple[bytes, str]:
    """Return (document bytes, head hash) of the report in ``fmt`` (``csv`` or ``geojson``);
    both verify with ``em-service evidence verify``."""
    if fmt == "csv":
        return evidence.to_csv(records)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}
            if r.get("lon") is not None and r.get("lat") is not None
            else None,
            "properties": r,
        }
        for r in records[1:]
    ]
    doc, _hashes, head = evidence._geojson_doc(records[0], features)
    return evidence.canonical(doc) + b"\n", head
