"""Generated crime batches in the 13-column format (simulated crimes, no real references)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from em_service.scenes.batches.writer import BatchCrime, rows, to_csv
from tests.scenes.helpers import LAT0, LON0, PROJ, X0, Y0

#: The parsers' fixed clock and the batch day (the morning after).
NOW = datetime(2026, 10, 22, 6, 0, tzinfo=UTC)
DAY = date(2026, 10, 21)
BATCH = "KNT20261021"


def crime(
    ref: str,
    code: str = "BIAD",
    *,
    start: datetime,
    hours: float = 2.0,
    dx_m: float = 0.0,
    dy_m: float = 0.0,
    text: str = "",
) -> BatchCrime:
    """Return a generated crime at (dx, dy) metres from the tests' scene centre."""
    lon, lat = PROJ.to_lonlat(X0 + dx_m, Y0 + dy_m)
    return BatchCrime(
        ref, code, start, start + timedelta(hours=hours), float(lat), float(lon), text
    )


def batch_csv(
    crimes: list[BatchCrime],
    *,
    datum: str = "OSGB36",
    header: bool = False,
    force: str = "KNT",
    day: date = DAY,
) -> bytes:
    """Return the CSV bytes of a generated batch."""
    return to_csv(rows(crimes, force_code=force, day=day, datum=datum), header=header)


__all__ = ["BATCH", "DAY", "LAT0", "LON0", "NOW", "batch_csv", "crime"]
