"""Write crimes in the 13-column batch format (simulator, demo, tests): the inverse of
:mod:`em_service.scenes.batches.format` for generated data."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from em_service.scenes.batches.config import CRIME_TYPE_CODES, DEFAULT_FORCES
from em_service.scenes.batches.format import COLUMNS, TIME_FORMAT
from geofences.national_grid import wgs84_to_grid

#: The service's crime type → the batch code a generated crime of that type gets.
CODE_OF_TYPE = {
    "burglary_dwelling": "BIAD",
    "burglary_business": "BOTD",
    "robbery": "RB",
    "theft_from_person": "TFP",
    "theft_from_vehicle": "TFMV",
    "other": "TFMV",
}


@dataclass(frozen=True)
class BatchCrime:
    """One generated crime: reference, type code, window (UTC), place (WGS84) and text."""

    crime_reference: str
    type_code: str
    time_from: datetime
    time_to: datetime
    lat: float
    lon: float
    crime_text: str = ""


def batch_id(force_code: str, day: date) -> str:
    """Return the batch id of ``force_code``'s batch of ``day`` (code + YYYYMMDD)."""
    return f"{force_code}{day:%Y%m%d}"


def utc_stamp(t: datetime) -> str:
    """Return ``t`` as the format's UTC ``YYYYMMDDHHmmss``."""
    return t.astimezone(UTC).strftime(TIME_FORMAT)


def rows(
    crimes: Iterable[BatchCrime], *, force_code: str, day: date, datum: str = "OSGB36"
) -> list[list[str]]:
    """Return the 13-column rows of ``crimes`` in ``force_code``'s batch of ``day``."""
    force = DEFAULT_FORCES.get(force_code, force_code)
    out = []
    for c in crimes:
        e = n = lat = lon = ""
        if datum == "OSGB36":
            x, y = wgs84_to_grid(c.lat, c.lon)
            e, n = f"{x:.1f}", f"{y:.1f}"
        else:
            lat, lon = f"{c.lat:.7f}", f"{c.lon:.7f}"
        description = CRIME_TYPE_CODES.get(c.type_code, ("", c.type_code))[1]
        out.append(
            [
                force,
                c.type_code,
                description,
                batch_id(force_code, day),
                c.crime_reference,
                utc_stamp(c.time_from),
                utc_stamp(c.time_to),
                e,
                n,
                lat,
                lon,
                datum,
                c.crime_text,
            ]
        )
    return out


def to_csv(rows_: Iterable[list[str]], *, header: bool = False) -> bytes:
    """Return the CSV bytes of ``rows_`` (CRLF line ends, as spreadsheets export)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(rows_)
    return buf.getvalue().encode()
