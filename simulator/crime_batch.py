"""A day's crime batch per force in the MoJ 13-column format, from the simulation's scenes.

Scenes are grouped by the Europe/London date they were reported (the batch date: a force sends
yesterday's crimes the next morning, here the day they are reported); each group becomes
``crime-batch-<FORCE><YYYYMMDD>.csv`` with OSGB36 easting/northing. Scenes whose window is
longer than the format's 12 hours are left out (counted), as a force's export would not send
them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from em_service.contracts import Scene
from em_service.scenes.batches.writer import CODE_OF_TYPE, BatchCrime, batch_id, rows, to_csv

LONDON = ZoneInfo("Europe/London")
MAX_WINDOW = timedelta(hours=12)


def write_batches(
    scenes: Iterable[Scene], out: Path, *, force_code: str = "KNT", datum: str = "OSGB36"
) -> tuple[list[Path], int]:
    """Write one batch file per reporting day into ``out``; return (paths, scenes left out)."""
    days: dict[date, list[BatchCrime]] = defaultdict(list)
    skipped = 0
    for s in scenes:
        if s.window_end - s.window_start > MAX_WINDOW:
            skipped += 1
            continue
        days[s.reported_at.astimezone(LONDON).date()].append(
            BatchCrime(
                crime_reference=s.crime_reference,
                type_code=CODE_OF_TYPE[s.crime_type],
                time_from=s.window_start,
                time_to=s.window_end,
                lat=s.lat,
                lon=s.lon,
                crime_text="simulated crime",
            )
        )
    paths = []
    for day, crimes in sorted(days.items()):
        path = out / f"crime-batch-{batch_id(force_code, day)}.csv"
        path.write_bytes(to_csv(rows(crimes, force_code=force_code, day=day, datum=datum)))
        paths.append(path)
    return paths, skipped
