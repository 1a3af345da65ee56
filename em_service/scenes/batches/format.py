"""The MoJ 13-column crime batch format: parse a file into crimes (as scenes) and rejections.

One row per crime, no header (one is accepted): ``policeForceArea, crimeType,
crimeTypeDescription, batchId, crimeReference, crimeDateTimeFrom, crimeDateTimeTo, easting,
northing, latitude, longitude, datum, crimeText``. Times are UTC ``YYYYMMDDHHmmss``; the place
is either OSGB36 easting/northing (``datum`` OSGB36) or WGS84 latitude/longitude (``datum``
WGS84). Every bad row is rejected with its line number and a reason and never stops the good
rows; a file that is not a CSV of 13 columns raises :class:`BadFile`. Pure: no I/O but the
bytes given, no clock but ``now``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from em_service.contracts import Scene
from em_service.scenes import ids
from em_service.scenes.batches.config import CRIME_TYPE_CODES, BatchSettings
from geofences.national_grid import grid_to_wgs84
from geofences.projection import get_projector

COLUMNS = (
    "policeForceArea",
    "crimeType",
    "crimeTypeDescription",
    "batchId",
    "crimeReference",
    "crimeDateTimeFrom",
    "crimeDateTimeTo",
    "easting",
    "northing",
    "latitude",
    "longitude",
    "datum",
    "crimeText",
)
TIME_FORMAT = "%Y%m%d%H%M%S"
#: British National Grid bounds (m). The grid runs to 700 km east: East Anglia's and Essex's
#: coasts lie beyond 600 km.
EASTING = (0.0, 700_000.0)
NORTHING = (0.0, 1_300_000.0)
#: WGS84 bounds of Great Britain and Northern Ireland (degrees).
LATITUDE = (49.5, 61.5)
LONGITUDE = (-8.5, 2.6)
BATCH_ID = re.compile(r"^([A-Za-z]{2,8})([0-9]{8})$")
_TIME = re.compile(r"^[0-9]{14}$")
_SUFFIXES = (" police service", " constabulary", " police")


class BadFile(ValueError):
    """A file that is not a CSV of 13 columns: rejected whole."""


class _Bad(ValueError):
    """One row's rejection reason."""


@dataclass(frozen=True)
class Rejection:
    """A rejected row: its line number (1-based, physical), crime reference and reason."""

    line: int
    crime_reference: str
    reason: str
    batch_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "crime_reference": self.crime_reference, "reason": self.reason}


@dataclass(frozen=True)
class Crime:
    """An accepted row, as given (``crime_text`` never interpreted) and as a scene."""

    line: int
    force_code: str
    batch_id: str
    batch_date: date
    crime_reference: str
    type_code: str
    type_description: str
    time_from: datetime
    time_to: datetime
    datum: str
    easting: float | None
    northing: float | None
    lat: float
    lon: float
    crime_text: str
    scene: Scene


@dataclass
class Parsed:
    """What a file holds: accepted crimes, rejected rows, and counts."""

    crimes: list[Crime] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    rows: int = 0
    header: bool = False

    def batch_ids(self) -> list[str]:
        """Return the batch ids of the file, in order of first appearance."""
        seen: dict[str, None] = {}
        for c in self.crimes:
            seen.setdefault(c.batch_id)
        for r in self.rejections:
            if r.batch_id:
                seen.setdefault(r.batch_id)
        return list(seen)

    def report(self) -> dict[str, Any]:
        """Return the check report: ``accepted``, ``rejected``, ``errors`` and the batches."""
        return {
            "rows": self.rows,
            "accepted": len(self.crimes),
            "rejected": len(self.rejections),
            "batches": self.batch_ids(),
            "errors": [r.as_dict() for r in sorted(self.rejections, key=lambda r: r.line)],
        }


def _show(text: str, limit: int = 40) -> str:
    """Return a field as quoted in a reason: stripped, cut to ``limit`` characters."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


class Parser:
    """Parses crime batch files against the configured forces and radii."""

    def __init__(self, settings: BatchSettings, *, now: datetime, crs: str = "EPSG:27700"):
        self.settings = settings
        self.now = now.astimezone(UTC)
        self.forces = settings.force_table()
        self.radii = settings.radii()
        self.projector = get_projector(crs)
        self._by_name: dict[str, str] = {}
        for code, name in self.forces.items():
            self._by_name[_norm(code)] = code
            self._by_name[_norm(name)] = code
            for suffix in _SUFFIXES:
                if _norm(name).endswith(suffix):
                    self._by_name[_norm(name)[: -len(suffix)]] = code

    # --- Fields ------------------------------------------------------------------------

    def _force(self, text: str) -> str:
        code = self._by_name.get(_norm(text))
        if code is None:
            raise _Bad(f"unknown police force {_show(text)}")
        return code

    def _batch(self, text: str, force_code: str) -> date:
        m = BATCH_ID.match(text.strip())
        if m is None:
            raise _Bad(f"batch id {_show(text)} is not a force code followed by YYYYMMDD")
        if m.group(1).casefold() != force_code.casefold():
            raise _Bad(f"batch id {_show(text)} does not start with the force's code {force_code}")
        try:
            day = datetime.strptime(m.group(2), "%Y%m%d").date()
        except ValueError:
            raise _Bad(f"batch id date {m.group(2)} is not a date") from None
        today = self.now.date()
        if day > today + timedelta(days=1):
            raise _Bad(f"batch id date {day.isoformat()} is in the future")
        if day < today - timedelta(days=self.settings.max_batch_age_days):
            raise _Bad(
                f"batch id date {day.isoformat()} is more than "
                f"{self.settings.max_batch_age_days} days old"
            )
        return day

    @staticmethod
    def _time(text: str, name: str) -> datetime:
        text = text.strip()
        if not _TIME.match(text):
            raise _Bad(f"{name} {_show(text)} is not YYYYMMDDHHmmss")
        try:
            return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _Bad(f"{name} {_show(text)} is not a valid time (YYYYMMDDHHmmss)") from None

    @staticmethod
    def _number(text: str, name: str, bounds: tuple[float, float]) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _Bad(f"{name} {_show(text)} is not a number") from None
        if not bounds[0] <= value <= bounds[1]:  # also refuses NaN
            raise _Bad(f"{name} {text.strip()[:40]} out of range [{bounds[0]:g}, {bounds[1]:g}]")
        return value

    def _place(self, row: dict[str, str]) -> tuple[str, float | None, float | None, float, float]:
        """Return (datum, easting, northing, lat, lon) of a row."""
        grid = [row["easting"].strip(), row["northing"].strip()]
        geo = [row["latitude"].strip(), row["longitude"].strip()]
        datum = row["datum"].strip().upper()
        if any(grid) and any(geo):
            raise _Bad("both easting/northing (OSGB36) and latitude/longitude (WGS84) given")
        if datum not in ("", "OSGB36", "WGS84"):
            raise _Bad(f"datum {_show(row['datum'])} is neither OSGB36 nor WGS84")
        if any(grid):
            if not all(grid):
                raise _Bad("easting and northing must both be given")
            if datum == "WGS84":
                raise _Bad("datum WGS84 with easting/northing (expected OSGB36)")
            e = self._number(grid[0], "easting", EASTING)
            n = self._number(grid[1], "northing", NORTHING)
            lat, lon = grid_to_wgs84(e, n)
            return "OSGB36", e, n, lat, lon
        if not all(geo):
            raise _Bad("latitude and longitude must both be given")
        if datum == "OSGB36":
            raise _Bad("datum OSGB36 with latitude/longitude (expected WGS84)")
        lat = self._number(geo[0], "latitude", LATITUDE)
        lon = self._number(geo[1], "longitude", LONGITUDE)
        return "WGS84", None, None, lat, lon

    # --- Rows --------------------------------------------------------------------------

    def row(self, line: int, row: dict[str, str]) -> Crime:
        """Return the crime of one row (``_Bad`` if it is rejected)."""
        required = {
            "policeForceArea": row["policeForceArea"],
            "batchId": row["batchId"],
            "crimeReference": row["crimeReference"],
            "crimeType": row["crimeType"],
            "crimeDateTimeFrom": row["crimeDateTimeFrom"],
            "crimeDateTimeTo": row["crimeDateTimeTo"],
        }
        missing = [k for k, v in required.items() if not v.strip()]
        located = any(row[k].strip() for k in ("easting", "northing", "latitude", "longitude"))
        if not located:
            missing.append("location (easting/northing or latitude/longitude)")
        if missing:
            raise _Bad("missing " + ", ".join(missing))
        force = self._force(row["policeForceArea"])
        batch_id = row["batchId"].strip()
        day = self._batch(batch_id, force)
        ref = row["crimeReference"].strip()
        if len(ref) > 64:
            raise _Bad("crimeReference longer than 64 characters")
        code = row["crimeType"].strip().upper()
        if code not in CRIME_TYPE_CODES:
            raise _Bad(
                f"unknown crimeType {_show(row['crimeType'])} "
                f"(expected one of {', '.join(CRIME_TYPE_CODES)})"
            )
        t0 = self._time(row["crimeDateTimeFrom"], "crimeDateTimeFrom")
        t1 = self._time(row["crimeDateTimeTo"], "crimeDateTimeTo")
        if t1 < t0:
            raise _Bad("crimeDateTimeTo is before crimeDateTimeFrom")
        span = (t1 - t0).total_seconds()
        if span > self.settings.max_window_s:
            raise _Bad(
                f"window of opportunity {span / 3600:.1f} h is longer than "
                f"{self.settings.max_window_s / 3600:g} h"
            )
        datum, e, n, lat, lon = self._place(row)
        if not bool(self.projector.to_xy_checked(lon, lat)[2]):
            raise _Bad(f"location {lat:.6f}, {lon:.6f} cannot be projected to {self.projector.crs}")
        crime_type, _ = CRIME_TYPE_CODES[code]
        scene = Scene(
            scene_id=ids.crime_batch_scene_id(batch_id, ref),
            crime_reference=ref,
            crime_type=crime_type,  # type: ignore[arg-type]
            lat=lat,
            lon=lon,
            window_start=t0,
            window_end=t1,
            reported_at=t1,
            radius_m=self.radii.get(code, 100.0),
            source=f"crime-batch/{batch_id}/{code}"[:64],
        )
        text = row["crimeText"].replace("\x00", "")[: self.settings.max_crime_text]
        return Crime(
            line=line,
            force_code=force,
            batch_id=batch_id,
            batch_date=day,
            crime_reference=ref,
            type_code=code,
            type_description=row["crimeTypeDescription"].strip()[:100],
            time_from=t0,
            time_to=t1,
            datum=datum,
            easting=e,
            northing=n,
            lat=lat,
            lon=lon,
            crime_text=text,
            scene=scene,
        )

    def parse(self, data: bytes) -> Parsed:
        """Parse a whole file (:class:`BadFile` if it is not a CSV of 13 columns)."""
        if b"\x00" in data:
            raise BadFile("not a CSV text file (it contains NUL bytes)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadFile(f"not UTF-8 text (byte {exc.start})") from None
        out = Parsed()
        reader = csv.reader(io.StringIO(text, newline=""))
        seen: dict[tuple[str, str], int] = {}
        first = True
        line = 1
        try:
            for values in reader:
                start, line = line, reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue
                if first:
                    first = False
                    if len(values) != len(COLUMNS):
                        raise BadFile(
                            f"not a 13-column crime batch: line {start} has {len(values)} "
                            f"column{'s' if len(values) != 1 else ''}"
                        )
                    if [v.strip().casefold() for v in values] == [c.casefold() for c in COLUMNS]:
                        out.header = True
                        continue
                out.rows += 1
                ref = values[4].strip() if len(values) > 4 else ""
                batch = values[3].strip() if len(values) > 3 else ""
                try:
                    if len(values) != len(COLUMNS):
                        raise _Bad(f"expected 13 columns, got {len(values)}")
                    crime = self.row(start, dict(zip(COLUMNS, values, strict=True)))
                    key = (crime.batch_id.upper(), ids.reference_key(crime.crime_reference))
                    if key in seen:
                        raise _Bad(f"crime reference repeated in this batch (line {seen[key]})")
                    seen[key] = start
                    out.crimes.append(crime)
                except _Bad as exc:
                    out.rejections.append(Rejection(start, ref[:64], str(exc), batch[:32]))
        except csv.Error as exc:
            raise BadFile(f"not a readable CSV (line {line}: {exc})") from None
        if first:
            raise BadFile("empty file: no rows")
        return out
