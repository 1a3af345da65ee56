"""The 13-column crime batch parser: both datums, every rejection reason, BST, whole-file refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from em_service.scenes import ids
from em_service.scenes.batches.config import BatchSettings
from em_service.scenes.batches.format import BadFile, Parser
from em_service.scenes.batches.writer import BatchCrime, rows, to_csv
from tests.scenes.batch_data import BATCH, NOW, batch_csv, crime
from tests.scenes.helpers import PROJ

T = datetime(2026, 10, 21, 1, 0, tzinfo=UTC)
GOOD = [
    "Kent Police",
    "BIAD",
    "Burglary in a dwelling",
    BATCH,
    "CR-G",
    "20261021010000",
    "20261021030000",
    "530000.0",
    "180000.0",
    "",
    "",
    "OSGB36",
    "side door forced",
]


def parser(**kw) -> Parser:
    return Parser(BatchSettings(**kw), now=NOW)


def row(**changes: str) -> list[str]:
    names = [
        "force",
        "type",
        "desc",
        "batch",
        "ref",
        "from",
        "to",
        "e",
        "n",
        "lat",
        "lon",
        "datum",
        "text",
    ]
    values = dict(zip(names, GOOD, strict=True)) | changes
    return [values[k] for k in names]


def test_valid_rows_in_both_datums_place_the_same_crime() -> None:
    crimes = [crime("CR-1", start=T), crime("CR-2", "RB", start=T, dx_m=250.0)]
    grid = parser().parse(batch_csv(crimes, datum="OSGB36"))
    geo = parser().parse(batch_csv(crimes, datum="WGS84", header=True))
    assert (grid.rejections, geo.rejections) == ([], [])
    assert geo.header and not grid.header
    for a, b, given in zip(grid.crimes, geo.crimes, crimes, strict=True):
        assert a.datum == "OSGB36" and b.datum == "WGS84"
        xa, ya = (float(v) for v in PROJ.to_xy(a.lon, a.lat))
        xb, yb = (float(v) for v in PROJ.to_xy(b.lon, b.lat))
        assert abs(xa - xb) < 1.0 and abs(ya - yb) < 1.0
        assert a.scene.scene_id == ids.crime_batch_scene_id(BATCH, given.crime_reference)
        assert a.scene.window_start == given.time_from and a.scene.window_end == given.time_to
    assert [c.scene.radius_m for c in grid.crimes] == [50.0, 100.0]
    assert [c.scene.crime_type for c in grid.crimes] == ["burglary_dwelling", "robbery"]


#: Ordnance Survey's OSTN15 standard test points (ETRS89 lat/lon ↔ OSGB36 easting/northing, as
#: published with OSTN15), a spread over Great Britain.
OS_POINTS = {
    "LOND": (51.48936564611111, -0.1199255641666667, 530624.963, 178388.461),
    "BRIS": (51.42754743361111, -2.544076186111111, 362269.979, 169978.688),
    "LEED": (53.80021519916667, -1.663791675833333, 422242.174, 433818.699),
    "NEWC": (54.97912274, -1.616576845555556, 424639.343, 565012.700),
    "OSHQ": (50.9312793775, -1.450514340555556, 438710.908, 114792.248),
    "PLYM": (50.43885825472222, -4.108645639722222, 250359.798, 62016.567),
    "COLC": (51.89436637527778, 0.897243275, 599445.578, 225722.824),
    "EDIN": (55.9247826525, -3.294792187777777, 319188.423, 670947.532),
}


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x1, y1 = (float(v) for v in PROJ.to_xy(lon1, lat1))
    x2, y2 = (float(v) for v in PROJ.to_xy(lon2, lat2))
    return ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5


@pytest.mark.parametrize("point", sorted(OS_POINTS))
def test_os_standard_points_both_ways_under_a_metre(point: str) -> None:
    """An OSGB36 row lands on OS's own lat/lon for the point (OSTN15), and a crime written in
    OSGB36 by the batch writer carries OS's easting/northing — each to well under a metre (PROJ's
    Helmert route alone is ~3–5 m off)."""
    lat, lon, e, n = OS_POINTS[point]
    got = parser().parse(to_csv([row(e=str(e), n=str(n))])).crimes[0]
    assert _metres(got.lat, got.lon, lat, lon) < 0.1
    assert (got.easting, got.northing) == (e, n)
    start = datetime(2026, 10, 20, 22, 0, tzinfo=UTC)
    crime_at = BatchCrime("REF/0001/26", "BIAD", start, start, lat, lon)
    cols = rows([crime_at], force_code="KNT", day=date(2026, 10, 21))[0]
    assert abs(float(cols[7]) - e) < 0.1 and abs(float(cols[8]) - n) < 0.1


def test_helmert_alone_is_metres_off_somewhere() -> None:
    """Why OSTN15: PROJ's offline Helmert route misses OS's points by more than a metre."""
    errors = []
    for lat, lon, e, n in OS_POINTS.values():
        hx, hy = (float(v) for v in PROJ.to_xy(lon, lat))
        errors.append(((hx - e) ** 2 + (hy - n) ** 2) ** 0.5)
    assert max(errors) > 1.0, errors


CASES = {
    "missing policeForceArea": row(force=""),
    "missing batchId": row(batch=""),
    "missing crimeReference": row(ref=""),
    "missing crimeType": row(type=""),
    "missing crimeDateTimeFrom": row(**{"from": ""}),
    "missing crimeDateTimeTo": row(to=""),
    "missing location": row(e="", n=""),
    "unknown police force 'Ruritania Police'": row(force="Ruritania Police"),
    "does not start with the force's code KNT": row(batch="ESX20261021"),
    "batch id date 20261341 is not a date": row(batch="KNT20261341"),
    "batch id date 2026-11-30 is in the future": row(batch="KNT20261130"),
    "more than 366 days old": row(batch="KNT20240101"),
    "unknown crimeType 'ARSON'": row(type="ARSON"),
    "crimeDateTimeFrom '2026-10-21 01:00' is not YYYYMMDDHHmmss": row(
        **{"from": "2026-10-21 01:00"}
    ),
    "crimeDateTimeTo '20261021250000' is not a valid time": row(to="20261021250000"),
    "crimeDateTimeTo is before crimeDateTimeFrom": row(to="20261021000000"),
    "window of opportunity 12.5 h is longer than 12 h": row(to="20261021133000"),
    "easting 750000 out of range": row(e="750000"),
    "northing -5 out of range": row(n="-5"),
    "latitude 48.9 out of range": row(e="", n="", lat="48.9", lon="-1.0", datum="WGS84"),
    "longitude 3.1 out of range": row(e="", n="", lat="51.0", lon="3.1", datum="WGS84"),
    "both easting/northing (OSGB36) and latitude/longitude (WGS84) given": row(
        lat="51.5", lon="-0.1"
    ),
    "datum WGS84 with easting/northing": row(datum="WGS84"),
    "easting 'abc' is not a number": row(e="abc"),
    "easting and northing must both be given": row(n=""),
}


def test_every_rejection_has_its_line_and_reason_and_good_rows_survive() -> None:
    good = [row(ref=f"CR-OK-{i}") for i in range(3)]
    body = [good[0], *CASES.values(), good[1], ["Kent Police", "BIAD"], good[2], good[2]]
    parsed = parser().parse(to_csv(body))
    assert [c.crime_reference for c in parsed.crimes] == ["CR-OK-0", "CR-OK-1", "CR-OK-2"]
    by_line = {r.line: r.reason for r in parsed.rejections}
    for offset, expected in enumerate(CASES, start=2):
        assert expected in by_line[offset], (offset, by_line[offset])
    n = len(CASES)
    assert by_line[n + 3] == "expected 13 columns, got 2"
    assert by_line[n + 5] == f"crime reference repeated in this batch (line {n + 4})"
    assert len(parsed.rejections) == n + 2 and parsed.rows == n + 5
    report = parsed.report()
    assert (report["accepted"], report["rejected"]) == (3, n + 2)
    assert report["errors"][0] == {"line": 2, "crime_reference": "CR-G", "reason": by_line[2]}


def test_missing_fields_are_named_together() -> None:
    parsed = parser().parse(to_csv([row(ref="", to="", e="", n="")]))
    assert parsed.rejections[0].reason == (
        "missing crimeReference, crimeDateTimeTo, location (easting/northing or latitude/longitude)"
    )


def test_times_across_the_end_of_bst_are_utc() -> None:
    # 25 Oct 2026: clocks go back at 01:00 UTC (02:00 BST → 01:00 GMT).
    start = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 00:30 BST
    parsed = parser().parse(batch_csv([crime("CR-BST", start=start, hours=3.0)], day=NOW.date()))
    (c,) = parsed.crimes
    assert c.time_from == start and (c.time_to - c.time_from).total_seconds() == 3 * 3600
    from em_service.scenes.batches.report import london

    assert london(c.time_from) == "2026-10-25T00:30:00+01:00"
    assert london(c.time_to) == "2026-10-25T02:30:00+00:00"


def test_forces_are_configuration() -> None:
    p = parser(forces="TVP=Thames Valley Police;KNT=Kent Police")
    parsed = p.parse(
        to_csv([row(force="Thames Valley", batch="TVP20261021"), row(force="Essex Police")])
    )
    assert [c.force_code for c in parsed.crimes] == ["TVP"]
    assert "unknown police force 'Essex Police'" in parsed.rejections[0].reason
    assert parser().parse(to_csv([row(force="kent")])).crimes[0].force_code == "KNT"
    assert parser().parse(to_csv([row(force="KNT")])).crimes[0].force_code == "KNT"


def test_crime_text_is_kept_verbatim() -> None:
    text = '=HYPERLINK("x") <script>alert(1)</script>, "quoted"\nnext line'
    parsed = parser().parse(to_csv([row(text=text)]))
    assert parsed.crimes[0].crime_text == text and parsed.crimes[0].line == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"\r\n\r\n", "empty file"),
        (b"a,b,c\r\n1,2,3\r\n", "not a 13-column crime batch: line 1 has 3 columns"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "NUL bytes"),
        ("ä".encode("latin-1") * 20, "not UTF-8"),
        (b'{"batchId": "KNT20261021"}', "has 1 column"),
    ],
)
def test_a_file_that_is_not_a_13_column_csv_is_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(BadFile, match=reason):
        parser().parse(data)


def test_the_simulator_writes_batches_the_parser_accepts(tmp_path) -> None:
    from datetime import timedelta

    from simulator.crime_batch import write_batches
    from tests.scenes.helpers import W0, scene_msg

    scenes = [
        scene_msg("sc-a", start=W0, end=W0 + timedelta(hours=12)),  # reported 21 Oct
        scene_msg("sc-b", start=W0 - timedelta(hours=6), end=W0 - timedelta(hours=5)),  # 20 Oct
        scene_msg("sc-long", start=W0, end=W0 + timedelta(hours=13)),  # over 12 h: left out
    ]
    paths, left_out = write_batches(scenes, tmp_path, force_code="KNT")
    assert [p.name for p in paths] == [
        "crime-batch-KNT20261020.csv",
        "crime-batch-KNT20261021.csv",
    ]
    assert left_out == 1
    parsed = [parser().parse(p.read_bytes()) for p in paths]
    assert [[c.crime_reference for c in p.crimes] for p in parsed] == [["CR/sc-b"], ["CR/sc-a"]]
    assert all(p.rejections == [] for p in parsed)
    assert parsed[1].crimes[0].scene.window_start == W0


def test_reasons_quote_at_most_40_characters_of_a_field() -> None:
    parsed = parser().parse(to_csv([row(force="X" * 5000)]))
    reason = parsed.rejections[0].reason
    assert reason == f"unknown police force '{'X' * 40}…'"
