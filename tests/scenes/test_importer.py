"""``em-service scenes import``: good rows imported, bad rows reported by line number."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings
from em_service.scenes.importer import (
    POLICE_UK_COLUMNS,
    BadFile,
    ImportReport,
    month_window,
    read_scenes,
)
from em_service.store import Store

SIM_ID = "{:064x}".format  # simulated Crime IDs: 64 hex digits like the real ones


def _police_row(n: int, **over: str) -> list[str]:
    row = {
        "Crime ID": SIM_ID(n),
        "Month": "2026-10",
        "Reported by": "Simulated Police",
        "Falls within": "Simulated Police",
        "Longitude": f"{-0.98 + n * 1e-4:.6f}",
        "Latitude": "51.450000",
        "Location": "On or near Simulated Street",
        "LSOA code": "E01000000",
        "LSOA name": "Simulated 001A",
        "Crime type": "Burglary",
        "Last outcome category": "Under investigation",
        "Context": "",
    } | over
    return [row[c] for c in POLICE_UK_COLUMNS]


def write_police_csv(path: Path) -> dict[int, str]:
    """Write a data.police.uk-style file; return {line: why it is bad} for its bad rows."""
    rows = [
        _police_row(1),  # line 2
        _police_row(2, **{"Crime type": "Robbery"}),  # 3
        _police_row(3, Longitude="", Latitude=""),  # 4: no location
        _police_row(4, Month="2026-13"),  # 5
        _police_row(5, **{"Crime ID": "", "Crime type": "Anti-social behaviour"}),  # 6: skipped
        _police_row(6, Longitude="west"),  # 7
        _police_row(7, Location="On or near\nA Two-Line Street"),  # 8–9: one row, two lines
        _police_row(8, **{"Crime type": "Jaywalking"}),  # 10
        _police_row(9)[:9],  # 11: too few columns
        _police_row(10, **{"Crime ID": ""}),  # 12
        _police_row(11, Longitude="-40.0", Latitude="10.0"),  # 13: far outside the grid
        _police_row(12, **{"Crime type": "Vehicle crime"}),  # 14
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(POLICE_UK_COLUMNS)
        writer.writerows(rows)
    return {
        4: "no location",
        5: "Month",
        7: "longitude",
        10: "unknown Crime type",
        11: "columns",
        12: "no Crime ID",
        13: "outside the area",
    }


def test_police_uk_rows_become_month_long_low_precision_scenes(tmp_path: Path) -> None:
    path = tmp_path / "street.csv"
    bad = write_police_csv(path)
    report = ImportReport()
    scenes = list(read_scenes(path, SceneSettings(), report=report))
    assert report.format == "data.police.uk"
    assert [line for line, _ in report.bad] == sorted(bad)
    for line, reason in report.bad:
        assert bad[line] in reason, (line, reason)
    assert report.skipped == 1  # anti-social behaviour is not acquisitive
    assert [s.crime_type for s in scenes] == [
        "burglary_dwelling",
        "robbery",
        "burglary_dwelling",
        "theft_from_vehicle",
    ]
    s = scenes[0]
    assert s.low_precision and s.source == "data.police.uk/Burglary"
    assert s.crime_reference == SIM_ID(1)
    assert s.scene_id == "pu-" + hashlib.sha256(SIM_ID(1).encode()).hexdigest()[:24]
    # October 2026 in London: BST until the 25th, so the month starts at 23:00 UTC on 30 Sep.
    assert s.window_start == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)
    assert s.window_end == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert s.radius_m == 100.0


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2026-01", "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"),
        ("2026-03", "2026-03-01T00:00:00+00:00", "2026-03-31T23:00:00+00:00"),
        ("2026-12", "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_month_windows_are_local_london_months(month: str, start: str, end: str) -> None:
    assert [t.isoformat() for t in month_window(month)] == [start, end]


def test_rich_csv_with_explicit_windows(tmp_path: Path) -> None:
    path = tmp_path / "scenes.csv"
    path.write_text(
        "crime_reference,crime_type,lat,lon,window_start,window_end,radius_m\n"
        "CR/1,burglary_dwelling,51.45,-0.98,2026-10-20T22:00:00+01:00,2026-10-21T07:00:00+01:00,\n"
        "CR/2,robbery,51.45,-0.98,2026-10-20T22:00:00,2026-10-21T07:00:00Z,100\n"
        "CR/3,arson,51.45,-0.98,2026-10-20T22:00:00Z,2026-10-21T07:00:00Z,100\n"
        "CR/4,robbery,51.45,-0.98,2026-10-21T22:00:00Z,2026-10-21T07:00:00Z,100\n"
        "CR/5,robbery,51.45,-0.98,2026-10-20T22:00:00Z,2026-10-21T07:00:00Z,5000\n"
        "CR/6,theft_from_person,51.45,-0.98,2026-10-20T22:00:00Z,2026-10-21T07:00:00Z,50\n"
    )
    report = ImportReport()
    scenes = list(read_scenes(path, SceneSettings(), report=report))
    assert report.format == "explicit windows"
    assert [(line, r.split()[0]) for line, r in report.bad] == [
        (3, "window_start"),
        (4, "crime_type"),
        (5, "window_end"),
        (6, "radius_m"),
    ]
    assert [(s.crime_reference, s.radius_m, s.low_precision) for s in scenes] == [
        ("CR/1", 100.0, False),
        ("CR/6", 50.0, False),
    ]
    assert scenes[0].window_start == datetime(2026, 10, 20, 21, 0, tzinfo=UTC)
    assert scenes[0].reported_at == scenes[0].window_end


def test_unknown_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(BadFile):
        list(read_scenes(path, SceneSettings(), report=ImportReport()))


def test_cli_imports_the_good_rows_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "street.csv"
    bad = write_police_csv(path)
    env = {"EM_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "scenes", "import", str(path), "--no-publish"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stderr  # some rows were bad
    for line in bad:
        assert f"{path}:{line}: " in run.stderr
    assert "imported 4 scenes, 7 bad rows (lines 4, 5, 7, 10, 11, 12, 13)" in run.stdout
    assert "1 skipped" in run.stdout
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    try:
        with store.read() as s:
            rows, total = scene_store.list_scenes(s)
        assert total == 4 and all(r.low_precision for r in rows)
    finally:
        store.dispose()
    # Importing the same file again replaces, never duplicates.
    again = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "scenes", "import", str(path), "--no-publish"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    try:
        with store.read() as s:
            assert scene_store.list_scenes(s)[1] == 4
    finally:
        store.dispose()
