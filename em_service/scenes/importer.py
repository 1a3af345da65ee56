"""``em-service scenes import FILE.csv``: bulk scenes from a CSV, published and stored.

Two formats, told apart by the header:

* **data.police.uk street-level crime** (``Crime ID, Month, Reported by, Falls within,
  Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome category,
  Context``). Times are month-only: the window is the whole month in Europe/London local time
  (``[1st 00:00, next 1st 00:00)``), marked ``low_precision``; ``reported_at`` is the month's
  end. The published locations are anonymised map points, so matches are leads, not evidence of
  place. Categories map to crime types as in :data:`POLICE_UK_TYPES`: data.police.uk does not
  split burglary into dwelling and business, so ``Burglary`` becomes ``burglary_dwelling`` and
  the original category is kept in ``source`` (``data.police.uk/Burglary``). Only acquisitive
  categories are imported unless ``all_types``; the others are counted as skipped.
* **explicit windows**: ``crime_reference, crime_type, lat, lon, window_start, window_end``
  and optionally ``reported_at`` (default: window_end), ``radius_m``, ``scene_id``,
  ``low_precision``. Times are RFC 3339 with an offset.

A bad row is reported with its line number (the header is line 1) and skipped; good rows are
published to the scenes topic and then stored (scene ids are deterministic, so re-importing a
file replaces rather than duplicates). Nothing here matches: the archiver searches each scene
as it arrives on the topic.
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from em_service.contracts import CRIME_TYPES, Scene
from em_service.scenes import ids
from em_service.scenes.config import SceneSettings, check_crime_reference
from em_service.text import TextError, clean_text
from geofences.projection import get_projector

POLICE_UK_COLUMNS = (
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
)
#: data.police.uk category → (crime type, acquisitive?).
POLICE_UK_TYPES: dict[str, tuple[str, bool]] = {
    "Burglary": ("burglary_dwelling", True),
    "Robbery": ("robbery", True),
    "Theft from the person": ("theft_from_person", True),
    "Vehicle crime": ("theft_from_vehicle", True),
    "Bicycle theft": ("other", True),
    "Other theft": ("other", True),
    "Shoplifting": ("other", True),
    "Anti-social behaviour": ("other", False),
    "Criminal damage and arson": ("other", False),
    "Drugs": ("other", False),
    "Other crime": ("other", False),
    "Possession of weapons": ("other", False),
    "Public order": ("other", False),
    "Violence and sexual offences": ("other", False),
}
RICH_REQUIRED = ("crime_reference", "crime_type", "lat", "lon", "window_start", "window_end")
RICH_OPTIONAL = ("reported_at", "radius_m", "scene_id", "low_precision")
BATCH = 500


class BadRow(ValueError):
    """A row that cannot become a scene; the message says why."""


class BadFile(ValueError):
    """A file that is not one of the two formats."""


@dataclass
class ImportReport:
    """What an import did: counts, and each bad row's line number and reason."""

    format: str = ""
    imported: int = 0
    skipped: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = ", ".join(str(n) for n, _ in self.bad[:20]) + ("…" if len(self.bad) > 20 else "")
        text = f"{self.format}: imported {self.imported} scenes, {len(self.bad)} bad rows"
        text += f" (lines {lines})" if self.bad else ""
        return text + f", {self.skipped} skipped (crime type not imported)"


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"{name} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadRow(f"{name} {text!r} is not a number")
    return value


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRow(f"{name} {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise BadRow(f"{name} {text!r} has no UTC offset")
    return value.astimezone(UTC)


def month_window(month: str, tz: str = "Europe/London") -> tuple[datetime, datetime]:
    """Return the UTC bounds of ``YYYY-MM`` in local time ``tz``: [1st 00:00, next 1st 00:00).

    >>> [t.isoformat() for t in month_window("2024-07")]
    ['2024-06-30T23:00:00+00:00', '2024-07-31T23:00:00+00:00']
    """
    try:
        start = datetime.strptime(month.strip(), "%Y-%m")
    except ValueError:
        raise BadRow(f"Month {month!r} is not YYYY-MM") from None
    end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    zone = ZoneInfo(tz)
    return start.replace(tzinfo=zone).astimezone(UTC), end.replace(tzinfo=zone).astimezone(UTC)


class _Rows:
    """Turns CSV rows into ``Scene`` messages (or :class:`BadRow`)."""

    def __init__(
        self, settings: SceneSettings, radius_m: float | None, all_types: bool, crs: str
    ) -> None:
        self.settings = settings
        self.radius_m = radius_m or settings.default_radius_m
        self.all_types = all_types
        self.crs = crs
        self.projector = get_projector(crs)

    def _place(self, lat_text: str, lon_text: str) -> tuple[float, float]:
        if not lat_text.strip() or not lon_text.strip():
            raise BadRow("no location (Latitude/Longitude empty)")
        lat, lon = _float(lat_text, "latitude"), _float(lon_text, "longitude")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadRow(f"latitude/longitude {lat}, {lon} out of range")
        if not bool(self.projector.in_area(lon, lat)):
            raise BadRow(f"location {lat}, {lon} is outside the area of {self.crs}")
        return lat, lon

    def _scene(self, fields: dict) -> Scene:
        span = (fields["window_end"] - fields["window_start"]).total_seconds()
        low = bool(fields.get("low_precision"))
        if span > (self.settings.low_precision_max_window_s if low else self.settings.max_window_s):
            raise BadRow(f"window of {span / 3600:.1f} h is longer than allowed")
        if not low and (why := check_crime_reference(self.settings, fields["crime_reference"])):
            raise BadRow(why)
        radius = fields.get("radius_m", self.radius_m)
        if not self.settings.min_radius_m <= radius <= self.settings.max_radius_m:
            raise BadRow(
                f"radius_m {radius} outside [{self.settings.min_radius_m}, "
                f"{self.settings.max_radius_m}]"
            )
        try:
            return msgspec.convert(fields | {"radius_m": radius}, Scene)
        except (msgspec.ValidationError, ValueError) as exc:
            raise BadRow(str(exc)) from None

    def police_uk(self, row: dict[str, str]) -> Scene | None:
        category = row["Crime type"].strip()
        if category not in POLICE_UK_TYPES:
            raise BadRow(f"unknown Crime type {category!r}")
        crime_type, acquisitive = POLICE_UK_TYPES[category]
        if not (acquisitive or self.all_types):
            return None
        crime_id = row["Crime ID"].strip()
        if not crime_id:
            raise BadRow("no Crime ID")
        if len(crime_id) > 64:
            raise BadRow("Crime ID longer than 64 characters")
        start, end = month_window(row["Month"], "Europe/London")
        lat, lon = self._place(row["Latitude"], row["Longitude"])
        return self._scene(
            {
                "scene_id": ids.police_uk_scene_id(crime_id),
                "crime_reference": crime_id,
                "crime_type": crime_type,
                "lat": lat,
                "lon": lon,
                "window_start": start,
                "window_end": end,
                "reported_at": end,
                "low_precision": True,
                "source": f"data.police.uk/{category}"[:64],
            }
        )

    def rich(self, row: dict[str, str]) -> Scene:
        try:
            ref = clean_text(row["crime_reference"], what="crime_reference", max_length=64)
        except TextError as exc:
            raise BadRow(str(exc)) from None
        crime_type = row["crime_type"].strip()
        if crime_type not in CRIME_TYPES:
            raise BadRow(f"crime_type {crime_type!r} is not one of {', '.join(CRIME_TYPES)}")
        lat, lon = self._place(row["lat"], row["lon"])
        start = _time(row["window_start"], "window_start")
        end = _time(row["window_end"], "window_end")
        if end < start:
            raise BadRow("window_end is before window_start")
        fields: dict = {
            "scene_id": (row.get("scene_id") or "").strip()
            or ids.scene_id(ref, lat, lon, start, end),
            "crime_reference": ref,
            "crime_type": crime_type,
            "lat": lat,
            "lon": lon,
            "window_start": start,
            "window_end": end,
            "reported_at": _time(row["reported_at"], "reported_at")
            if (row.get("reported_at") or "").strip()
            else end,
            "low_precision": (row.get("low_precision") or "").strip().lower()
            in ("1", "true", "yes"),
            "source": "csv",
        }
        if (row.get("radius_m") or "").strip():
            fields["radius_m"] = _float(row["radius_m"], "radius_m")
        return self._scene(fields)


def read_scenes(
    path: Path,
    settings: SceneSettings,
    *,
    radius_m: float | None = None,
    all_types: bool = False,
    crs: str = "EPSG:27700",
    report: ImportReport,
) -> Iterator[Scene]:
    """Yield the good rows of ``path`` as scenes; record bad and skipped rows in ``report``
    (a location outside the area of ``crs`` is a bad row)."""
    rows = _Rows(settings, radius_m, all_types, crs)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if tuple(header) == POLICE_UK_COLUMNS:
            report.format, parse = "data.police.uk", rows.police_uk
        elif set(RICH_REQUIRED) <= set(header) <= set(RICH_REQUIRED + RICH_OPTIONAL):
            report.format, parse = "explicit windows", rows.rich
        else:
            raise BadFile(
                "unknown header: expected the data.police.uk street-level columns or "
                + ", ".join(RICH_REQUIRED)
                + " [, "
                + ", ".join(RICH_OPTIONAL)
                + "]"
            )
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            try:
                if len(values) != len(header):
                    raise BadRow(f"expected {len(header)} columns, got {len(values)}")
                scene = parse(dict(zip(header, values, strict=True)))
            except BadRow as exc:
                report.bad.append((line, str(exc)))
                continue
            if scene is None:
                report.skipped += 1
            else:
                yield scene


def count_lines(path: Path) -> int:
    """Return the number of lines in ``path`` (for the progress bar)."""
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


async def import_file(
    path: Path,
    settings: SceneSettings,
    *,
    store_batch: Callable[[list[Scene]], None],
    publish_batch: Callable[[list[Scene]], Awaitable[None]] | None,
    radius_m: float | None = None,
    all_types: bool = False,
    crs: str = "EPSG:27700",
    progress: bool = True,
) -> ImportReport:
    """Read ``path``; publish (if ``publish_batch``) then store each batch of good scenes."""
    from tqdm import tqdm

    report = ImportReport()
    bar = tqdm(total=max(count_lines(path) - 1, 0), unit="row", disable=None if progress else True)
    batch: list[Scene] = []
    seen = 0

    async def flush() -> None:
        if publish_batch is not None:
            await publish_batch(batch)
        store_batch(batch)
        report.imported += len(batch)
        batch.clear()

    try:
        for scene in read_scenes(
            path, settings, radius_m=radius_m, all_types=all_types, crs=crs, report=report
        ):
            batch.append(scene)
            if len(batch) >= BATCH:
                await flush()
            done = report.imported + len(batch) + report.skipped + len(report.bad)
            bar.update(done - seen)
            seen = done
        if batch:
            await flush()
        bar.update(report.imported + report.skipped + len(report.bad) - seen)
    finally:
        bar.close()
    return report
