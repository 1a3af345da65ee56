"""WGS84 ⇄ British National Grid: one fixed offline operation, no network, no warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pyproj
import pytest

from geofences.errors import GeometryError
from geofences.projection import get_projector


def test_one_cached_projector_per_crs_without_network_or_warnings() -> None:
    get_projector.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = get_projector("EPSG:27700")
        p.to_xy(np.array([-0.1276, -3.19]), np.array([51.5072, 55.95]))
    assert get_projector("EPSG:27700") is p
    assert not pyproj.network.is_network_enabled()
    assert "OSGB36 to WGS 84" in p.description
    assert 0 < p.accuracy_m <= 2.0  # the 7-parameter Helmert fit, not a ballpark


def test_known_point_and_round_trip() -> None:
    p = get_projector()
    x, y = p.to_xy(-0.1276, 51.5072)
    assert (float(x), float(y)) == pytest.approx((530_043.2, 180_358.2), abs=0.5)
    lon, lat = p.to_lonlat(x, y)
    assert (float(lon), float(lat)) == pytest.approx((-0.1276, 51.5072), abs=1e-6)


def test_same_operation_everywhere_so_relative_distances_are_consistent() -> None:
    # 1 km of easting measured at both ends of Great Britain stays 1 km (±0.1 %, grid scale).
    p = get_projector()
    for lon, lat in [(-5.7, 50.07), (-3.19, 55.95), (1.7, 52.6)]:
        x, y = p.to_xy(lon, lat)
        lon2, lat2 = p.to_lonlat(x + 1000.0, y)
        x2, _ = p.to_xy(lon2, lat2)
        assert float(x2 - x) == pytest.approx(1000.0, abs=0.01)


def test_area_of_use() -> None:
    p = get_projector()
    assert p.in_area(-0.1276, 51.5072)
    assert not p.in_area(2.35, 48.85)  # Paris


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:999999", "not a crs"])
def test_rejects_crs_that_is_not_projected_metres(crs: str) -> None:
    with pytest.raises(GeometryError):
        get_projector(crs)


def test_other_projected_crs() -> None:
    p = get_projector("EPSG:32630")  # UTM 30N
    x, _ = p.to_xy(-3.0, 0.0)
    assert float(x) == pytest.approx(500_000.0, abs=1e-3)


def test_to_xy_checked_flags_points_outside_the_area_or_not_finite() -> None:
    p = get_projector()
    lon = np.array([-0.1276, 88.0, 2.35, -0.1276])
    lat = np.array([51.5072, 0.0, 48.85, 51.5072])
    x, y, ok = p.to_xy_checked(lon, lat)
    assert ok.tolist() == [True, False, False, True]
    assert not np.isfinite(x[1])  # lat 0, lon 88: infinite in EPSG:27700
    assert x[0] == x[3] and np.isfinite(y[0])
