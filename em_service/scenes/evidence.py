"""Evidence export of one match (GeoJSON or CSV) with a hash-chained manifest, and its check.

The export is a sequence of *records*: a header (what, who, when, the rule and its
parameters, the record count), the scene, the match (or exclusion), every evidence fix and
every interpolated segment. Times are given in UTC and in local time (Europe/London, with its
offset); coordinates are WGS84 ``lon``/``lat`` degrees (GeoJSON order).

Manifest: ``sha256_i`` = SHA-256 of record *i*'s exact bytes; ``chain_i`` =
SHA-256(``chain_{i-1}`` ‖ ``sha256_i``) in hex, ``chain_{-1}`` = 64 zeros; the *head* is the
last chain value. The API writes the head to the append-only, hash-chained audit log when it
exports, so a third party can compare: ``em-service evidence verify FILE`` recomputes every
hash and prints the head, and fails on any change to the file (one byte is enough):

* GeoJSON: the file is canonical JSON (keys sorted, no whitespace, UTF-8, one final newline);
  a record is a canonical JSON value (the ``evidence`` header, then each feature);
* CSV: each record is one ``\\r\\n``-terminated line, hashed as written up to its last two
  fields (``sha256``, ``chain_sha256``); the column header line is fixed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # verification needs none of these: it stays light for third parties
    from em_service.scenes.store import SceneMatchRow, SceneRow

FORMAT = "em-service scene evidence v1"
ALGORITHM = "sha256-chain-v1"
GENESIS = "0" * 64
CSV_COLUMNS = (
    "n",
    "record",
    "device_id",
    "time_utc",
    "time_local",
    "lon",
    "lat",
    "accuracy_m",
    "distance_m",
    "inside",
    "in_window",
    "detail",
    "sha256",
    "chain_sha256",
)
_CSV_HEADER = ",".join(CSV_COLUMNS).encode() + b"\r\n"
_HUMAN = {"record", "device_id", "time_utc", "time_local", "lon", "lat", "accuracy_m"}
_HUMAN |= {"distance_m", "inside", "in_window"}


def canonical(value: Any) -> bytes:
    """Return the canonical JSON bytes of ``value`` (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chain(prev: str, record_sha: str) -> str:
    return _sha((prev + record_sha).encode())


class _Times:
    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)

    def __call__(self, prefix: str, ts: datetime | float | None) -> dict[str, str | None]:
        if ts is None:
            return {f"{prefix}_utc": None, f"{prefix}_local": None}
        if not isinstance(ts, datetime):
            ts = datetime.fromtimestamp(ts, tz=UTC)
        utc = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        local = ts.astimezone(self.zone).isoformat(timespec="milliseconds")
        return {f"{prefix}_utc": utc, f"{prefix}_local": local}


def build_records(
    scene: SceneRow,
    row: SceneMatchRow,
    *,
    actor: str,
    exported_at: datetime,
    tz: str = "Europe/London",
) -> list[dict[str, Any]]:
    """Return the evidence records of one match row, header first."""
    from em_service.scenes import store as scene_store
    from em_service.scenes.matching import RULE, Exclusion, Match

    t = _Times(tz)
    kind, found, config = scene_store.load_evidence(row)
    records: list[dict[str, Any]] = [
        {
            "record": "scene",
            "scene_id": scene.scene_id,
            "crime_reference": scene.crime_reference,
            "crime_type": scene.crime_type,
            "lon": scene.lon,
            "lat": scene.lat,
            "radius_m": scene.radius_m,
            **t("window_start", scene.window_start),
            **t("window_end", scene.window_end),
            **t("reported_at", scene.reported_at),
            "low_precision": scene.low_precision,
            "source": scene.source,
        },
        {
            "record": "exclusion" if kind == "exclusion" else "match",
            "offender_id": row.offender_id,
            "device_id": row.device_id,
            "confidence": row.confidence,
            "closest_m": row.closest_m,
            **t("closest_at", row.closest_at),
            "closest_source": row.closest_source,
            "lon": row.closest_lon,
            "lat": row.closest_lat,
            "dwell_s": row.dwell_s,
            "fixes_inside": row.fixes_inside,
            "worst_accuracy_m": row.worst_accuracy_m,
            "in_window": row.in_window,
            "origin": row.origin,
            **t("found_at", row.found_at),
            **t("updated_at", row.updated_at),
        },
    ]
    if isinstance(found, Match):
        records[1]["fixes_total"] = found.fixes_total
    elif isinstance(found, Exclusion):
        records[1] |= {
            "device_ids": list(found.device_ids),
            "fixes_in_window": found.fixes_in_window,
            "max_gap_s": found.max_gap_s,
            **t("covered_from", found.covered_from_s),
            **t("covered_to", found.covered_to_s),
            "min_detour_margin_m": found.min_detour_margin_m,
        }
    elif kind == "live":
        records[1]["note"] = "found live; the fixes are added when the archive is re-matched"
    for f in found.fixes if found is not None else ():
        records.append(
            {
                "record": "fix",
                "device_id": f.device_id,
                **t("time", f.ts_s),
                "lon": f.lon,
                "lat": f.lat,
                "accuracy_m": f.accuracy_m,
                "distance_m": f.distance_m,
                "inside": f.inside,
                "in_window": f.in_window,
            }
        )
    for s in found.segments if isinstance(found, Match) else ():
        records.append(
            {
                "record": "segment",
                "device_id": s.device_id,
                **t("start", s.start_ts_s),
                **t("end", s.end_ts_s),
                "closest_m": s.closest_m,
                **t("time", s.closest_ts_s),
                "lon": s.closest_lon,
                "lat": s.closest_lat,
            }
        )
    header = {
        "record": "header",
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "records": len(records) + 1,
        "scene_id": scene.scene_id,
        "offender_id": row.offender_id,
        "purpose": scene.crime_reference,
        "exported_by": actor,
        **t("exported_at", exported_at),
        "timezone": tz,
        "coordinates": "WGS84 degrees, [lon, lat]",
        "distances": "metres; closest_m and segment distances are accuracy-discounted",
        "rule": RULE,
        "config": config,
        "verify": "em-service evidence verify FILE",
    }
    return [header, *records]


# --- GeoJSON -------------------------------------------------------------------------------


def _feature(rec: dict[str, Any], fixes: dict[tuple[str, str], list[float]]) -> dict[str, Any]:
    geometry: dict[str, Any] | None = None
    if rec["record"] == "segment":
        a = fixes.get((rec["device_id"], rec["start_utc"]))
        b = fixes.get((rec["device_id"], rec["end_utc"]))
        if a and b:
            geometry = {"type": "LineString", "coordinates": [a, b]}
    if geometry is None and rec.get("lon") is not None and rec.get("lat") is not None:
        geometry = {"type": "Point", "coordinates": [rec["lon"], rec["lat"]]}
    return {"type": "Feature", "geometry": geometry, "properties": rec}


def _geojson_doc(header: Any, features: Any) -> tuple[dict[str, Any], list[str], str]:
    """Return the document of these records, its per-record hashes and its head."""
    hashes, chains, prev = [], [], GENESIS
    for value in (header, *features):
        h = _sha(canonical(value))
        prev = _chain(prev, h)
        hashes.append(h)
        chains.append(prev)
    doc = {
        "type": "FeatureCollection",
        "evidence": header,
        "features": features,
        "manifest": {
            "algorithm": ALGORITHM,
            "records": [
                {"n": i, "sha256": h, "chain_sha256": c}
                for i, (h, c) in enumerate(zip(hashes, chains, strict=True))
            ],
            "head": prev,
        },
    }
    return doc, hashes, prev


def to_geojson(records: list[dict[str, Any]]) -> tuple[bytes, str]:
    """Return the GeoJSON document (canonical bytes) and its head hash."""
    fixes = {
        (r["device_id"], r["time_utc"]): [r["lon"], r["lat"]]
        for r in records
        if r["record"] == "fix"
    }
    doc, _hashes, head = _geojson_doc(records[0], [_feature(r, fixes) for r in records[1:]])
    return canonical(doc) + b"\n", head


# --- CSV -----------------------------------------------------------------------------------


def _csv_fields(n: int, rec: dict[str, Any]) -> list[str]:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    detail = {k: v for k, v in rec.items() if k not in _HUMAN}
    return [
        str(n),
        rec["record"],
        cell(rec.get("device_id")),
        cell(rec.get("time_utc")),
        cell(rec.get("time_local")),
        cell(rec.get("lon")),
        cell(rec.get("lat")),
        cell(rec.get("accuracy_m")),
        cell(rec.get("distance_m", rec.get("closest_m"))),
        cell(rec.get("inside")),
        cell(rec.get("in_window")),
        canonical(detail).decode() if detail else "",
    ]


def to_csv(records: list[dict[str, Any]]) -> tuple[bytes, str]:
    """Return the CSV document and its head hash."""
    out, prev = [_CSV_HEADER], GENESIS
    for n, rec in enumerate(records):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(_csv_fields(n, rec))
        data = buf.getvalue().replace("\r", " ").replace("\n", " ").encode()
        h = _sha(data)
        prev = _chain(prev, h)
        out.append(data + f",{h},{prev}\r\n".encode())
    return b"".join(out), prev


def export(
    scene: SceneRow,
    row: SceneMatchRow,
    *,
    fmt: str,
    actor: str,
    exported_at: datetime,
    tz: str = "Europe/London",
) -> tuple[bytes, str, int]:
    """Return (document bytes, head hash, record count) in ``fmt`` (``geojson`` or ``csv``)."""
    records = build_records(scene, row, actor=actor, exported_at=exported_at, tz=tz)
    data, head = (to_geojson if fmt == "geojson" else to_csv)(records)
    return data, head, len(records)


# --- Verification --------------------------------------------------------------------------


@dataclass
class Verification:
    """Result of :func:`verify`."""

    format: str = ""
    records: int = 0
    head: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _verify_chain(
    result: Verification, hashes: list[str], listed: list[tuple[str, str]], declared: int
) -> None:
    prev = GENESIS
    for n, (h, (sha, chain)) in enumerate(zip(hashes, listed, strict=False)):
        prev = _chain(prev, h)
        if h != sha:
            result.problems.append(f"record {n}: contents do not match its sha256 (altered)")
        elif prev != chain:
            result.problems.append(f"record {n}: chain_sha256 does not follow the record before")
        if len(result.problems) >= 20:
            return
    if len(hashes) != len(listed) or len(hashes) != declared:
        result.problems.append(
            f"{len(hashes)} records, {len(listed)} in the manifest, {declared} declared "
            "(records added or removed)"
        )
    result.records, result.head = len(hashes), prev


def _verify_geojson(data: bytes, result: Verification) -> None:
    result.format = "geojson"
    try:
        doc = json.loads(data.decode("utf-8"))
        header, features = doc["evidence"], list(doc["features"])
        listed = [(r["sha256"], r["chain_sha256"]) for r in doc["manifest"]["records"]]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"not an evidence GeoJSON document: {exc}")
        return
    declared = header.get("records", -1) if isinstance(header, dict) else -1
    expected, hashes, _head = _geojson_doc(header, features)
    _verify_chain(result, hashes, listed, declared)
    if not result.problems and canonical(expected) + b"\n" != data:
        # Every record is intact: the change is outside them (manifest, layout, whitespace).
        result.problems.append("the file is not the document its records make (bytes changed)")


def _verify_csv(data: bytes, result: Verification) -> None:
    result.format = "csv"
    if not data.startswith(_CSV_HEADER) or not data.endswith(b"\r\n"):
        result.problems.append("not an evidence CSV file (header or line endings changed)")
        return
    hashes, listed, declared = [], [], -1
    for n, line in enumerate(data[len(_CSV_HEADER) : -2].split(b"\r\n")):
        parts = line.rsplit(b",", 2)
        if len(parts) != 3 or not line.startswith(f"{n},".encode()):
            result.problems.append(f"record {n}: malformed line")
            return
        body, sha, chain = parts
        hashes.append(_sha(body))
        listed.append((sha.decode(errors="replace"), chain.decode(errors="replace")))
        if n == 0:
            try:
                row = next(csv.reader(io.StringIO(body.decode("utf-8"))))
                declared = int(json.loads(row[-1]).get("records", -1))
            except (
                csv.Error,
                UnicodeDecodeError,
                ValueError,
                IndexError,
                StopIteration,
                AttributeError,
            ):
                result.problems.append("record 0: the header record cannot be read")
    _verify_chain(result, hashes, listed, declared)


def verify(data: bytes) -> Verification:
    """Recompute every hash of an exported evidence file or pack; ``ok`` only if nothing
    changed."""
    if data[:4] == b"PK\x03\x04":  # an evidence pack (ZIP): exports, map image, manifest
        from em_service.scenes import pack

        return pack.verify(data)
    result = Verification()
    (_verify_geojson if data[:1] == b"{" else _verify_csv)(data, result)
    return result
