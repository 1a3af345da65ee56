"""Compiling zones and the accuracy-aware verdict rules (geofences.zones)."""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec
import numpy as np
import pytest
import shapely
from hypothesis import assume, given
from hypothesis import strategies as st

from geofences import (
    CLEAR,
    DEFINITE,
    INACTIVE,
    POSSIBLE,
    UNUSABLE,
    ZoneIndex,
    compile_conditions,
)
from geofences.errors import ConditionsError, GeometryError
from geofences.schedule import parse_schedule
from tests.geofences.helpers import (
    ORIGIN,
    PROPS,
    circle_feature,
    conditions_xy,
    lonlat,
    polygon_feature,
    square,
    utc,
    zone,
)

X0, Y0 = ORIGIN


def verdicts_of(cc, x, y, acc, ts=0.0):
    return [v.verdict for v in cc.evaluate_fix(ts, x=x, y=y, accuracy_m=acc)]


def reference(geom: shapely.Geometry, x: float, y: float, r: float) -> tuple[float, int]:
    """Brute force: signed distance (positive inside), class (2 inside, 1 straddle, 0 outside)."""
    p = shapely.Point(x, y)
    d = shapely.distance(geom.boundary, p)
    s = d if shapely.intersects(geom, p) else -d
    return s, 2 if s >= r else (0 if s < -r else 1)


# --------------------------------------------------------------------------- strategies


class Star(NamedTuple):
    geom: shapely.Polygon
    centre: tuple[float, float]


@st.composite
def star_polygons(draw: st.DrawFn) -> Star:
    """A valid polygon star-shaped around ``centre`` (50 m – 3 km), sometimes with a hole there.

    Angle gaps stay under pi, so every ray from the centre leaves the polygon exactly once.
    """
    n = draw(st.integers(5, 24))
    gaps = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n)))
    angles = np.cumsum(gaps) / gaps.sum() * 2 * math.pi
    radii = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n)))
    scale = draw(st.floats(50, 3000))
    cx, cy = X0 + draw(st.floats(-1000, 1000)), Y0 + draw(st.floats(-1000, 1000))
    shell = np.column_stack(
        [cx + scale * radii * np.cos(angles), cy + scale * radii * np.sin(angles)]
    )
    holes = [square(cx, cy, 0.02 * scale).exterior.coords[::-1]] if draw(st.booleans()) else []
    poly = shapely.Polygon(shell, holes)
    assume(poly.is_valid)
    return Star(poly, (cx, cy))


def probe(draw: st.DrawFn, star: Star) -> tuple[float, float, float]:
    """A fix anywhere around the zone (up to 150 m beyond its bounds) and an accuracy."""
    minx, miny, maxx, maxy = star.geom.bounds
    x = draw(st.floats(minx - 150, maxx + 150))
    y = draw(st.floats(miny - 150, maxy + 150))
    return x, y, draw(st.floats(0.0, 100.0))


def ray_point(draw: st.DrawFn, star: Star, lo: float, hi: float) -> tuple[float, float]:
    """A point on the ray from the centre through a vertex, at ``lo``–``hi`` times its length."""
    shell = np.asarray(star.geom.exterior.coords)[:-1]
    vx, vy = shell[draw(st.integers(0, len(shell) - 1))]
    t = draw(st.floats(lo, hi))
    cx, cy = star.centre
    return cx + t * (vx - cx), cy + t * (vy - cy)


# --------------------------------------------------------------------------- properties


@PROPS
@given(data=st.data(), star=star_polygons(), kind=st.sampled_from(["exclusion", "inclusion"]))
def test_verdict_matches_brute_force_scalar_and_batch(data, star, kind) -> None:
    geom = star.geom
    cc = conditions_xy(zone("z", kind, geom))
    index = ZoneIndex([cc])
    xs, ys, rs = zip(*[probe(data.draw, star) for _ in range(20)], strict=True)
    batch = index.evaluate(np.zeros(20, int), np.zeros(20), x=xs, y=ys, accuracy_m=rs)
    for i, (x, y, r) in enumerate(zip(xs, ys, rs, strict=True)):
        s, cls = reference(geom, x, y, r)
        if min(abs(s - r), abs(s + r)) < 1e-6:
            continue  # a tie: either answer is right
        expected = cls if kind == "exclusion" else 2 - cls
        (v,) = cc.evaluate_fix(0.0, x=x, y=y, accuracy_m=r)
        assert v.code == expected == batch.verdict[i]
        if expected in (POSSIBLE, DEFINITE):
            depth = s if kind == "exclusion" else -s
            assert v.depth_m == pytest.approx(depth, abs=1e-6)
            assert batch.depth_m[i] == pytest.approx(depth, abs=1e-6)
        else:
            assert v.depth_m is None and math.isnan(batch.depth_m[i])


@PROPS
@given(data=st.data(), star=star_polygons())
def test_a_disc_inside_the_zone_is_never_clear(data, star) -> None:
    x, y = ray_point(data.draw, star, 0.1, 0.95)
    s, _ = reference(star.geom, x, y, 0.0)
    assert s > 0
    r = data.draw(st.floats(0.0, min(s, 100.0))) * (1 - 1e-9)
    assert verdicts_of(conditions_xy(zone("z", "exclusion", star.geom)), x, y, r) == ["definite"]
    assert verdicts_of(conditions_xy(zone("z", "inclusion", star.geom)), x, y, r) == ["clear"]


@PROPS
@given(data=st.data(), star=star_polygons())
def test_a_disc_outside_the_zone_is_clear_for_exclusion_definite_for_inclusion(data, star) -> None:
    x, y = ray_point(data.draw, star, 1.02, 1.5)
    s, _ = reference(star.geom, x, y, 0.0)
    assert s < 0
    r = data.draw(st.floats(0.0, min(-s, 100.0))) * (1 - 1e-9)
    assert verdicts_of(conditions_xy(zone("z", "exclusion", star.geom)), x, y, r) == ["clear"]
    assert verdicts_of(conditions_xy(zone("z", "inclusion", star.geom)), x, y, r) == ["definite"]


@PROPS
@given(
    data=st.data(),
    star=star_polygons(),
    dx=st.integers(-100_000, 100_000),
    dy=st.integers(-100_000, 100_000),
)
def test_translating_zone_and_fix_together_keeps_the_verdict(data, star, dx, dy) -> None:
    x, y, r = probe(data.draw, star)
    s, _ = reference(star.geom, x, y, r)
    assume(min(abs(s - r), abs(s + r)) > 1e-3)
    moved = shapely.transform(star.geom, lambda c: c + np.array([dx, dy]))
    a = conditions_xy(zone("z", "exclusion", star.geom)).evaluate_fix(0, x=x, y=y, accuracy_m=r)
    b = conditions_xy(zone("z", "exclusion", moved)).evaluate_fix(
        0, x=x + dx, y=y + dy, accuracy_m=r
    )
    assert a[0].code == b[0].code
    assert (a[0].depth_m is None) == (b[0].depth_m is None)
    if a[0].depth_m is not None:
        assert a[0].depth_m == pytest.approx(b[0].depth_m, abs=1e-4)


@PROPS
@given(data=st.data(), star=star_polygons())
def test_worse_accuracy_only_moves_towards_possible(data, star) -> None:
    cc = conditions_xy(zone("z", "exclusion", star.geom))
    x, y, r1 = probe(data.draw, star)
    r2 = data.draw(st.floats(r1, 100.0))
    v1 = cc.evaluate_fix(0, x=x, y=y, accuracy_m=r1)[0].code
    v2 = cc.evaluate_fix(0, x=x, y=y, accuracy_m=r2)[0].code
    assert v2 in (v1, POSSIBLE)


@PROPS
@given(
    radius=st.floats(5.0, 5000.0),
    angle=st.floats(0, 2 * math.pi),
    dist_frac=st.floats(0.0, 3.0),
    r=st.floats(0.0, 100.0),
)
def test_circle_zones_are_exact_circles(radius, angle, dist_frac, r) -> None:
    cc = conditions_xy(zone("c", "exclusion", circle=(X0, Y0, radius)))
    d = dist_frac * radius
    x, y = X0 + d * math.cos(angle), Y0 + d * math.sin(angle)
    s = radius - math.hypot(x - X0, y - Y0)
    assume(min(abs(s - r), abs(s + r)) > 1e-6)
    expected = DEFINITE if s >= r else (CLEAR if s < -r else POSSIBLE)
    (v,) = cc.evaluate_fix(0, x=x, y=y, accuracy_m=r)
    assert v.code == expected
    assert ZoneIndex([cc]).evaluate([0], [0.0], x=[x], y=[y], accuracy_m=[r]).verdict[0] == expected


def test_grid_and_bands_agree_with_brute_force_on_a_jagged_county() -> None:
    rng = np.random.default_rng(5)
    n = 400
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = 20_000 * rng.uniform(0.6, 1.0, n)
    county = shapely.Polygon(np.column_stack([X0 + rad * np.cos(ang), Y0 + rad * np.sin(ang)]))
    cc = conditions_xy(zone("county", "inclusion", county))
    m = 20_000
    x, y = X0 + rng.uniform(-21_000, 21_000, m), Y0 + rng.uniform(-21_000, 21_000, m)
    r = rng.uniform(0, 100, m)
    res = ZoneIndex([cc]).evaluate(np.zeros(m, int), np.zeros(m), x=x, y=y, accuracy_m=r)
    pts = shapely.points(x, y)
    d = shapely.distance(county.boundary, pts)
    s = np.where(shapely.intersects(county, pts), d, -d)
    cls = np.where(s >= r, 2, np.where(s < -r, 0, 1))
    assert (res.verdict == 2 - cls).all()
    breach = res.verdict != CLEAR
    assert np.allclose(res.depth_m[breach], -s[breach], atol=1e-6)


@pytest.mark.parametrize("jitter_m", [3.0, 20.0])
def test_a_jagged_5000_vertex_ring_compiles_fast_and_verdicts_stay_exact(jitter_m) -> None:
    """Band buffers of a many-vertex ring come from a simplified copy (geofences.zones._coarse):
    GEOS took 20–74 s to buffer such a ring; the verdicts must still equal brute force on the
    original polygon, also next to its boundary."""
    rng = np.random.default_rng(11)
    n = 5_000
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = 2_000 + rng.uniform(-jitter_m, jitter_m, n)
    ring = shapely.Polygon(np.column_stack([X0 + rad * np.cos(ang), Y0 + rad * np.sin(ang)]))
    assert ring.is_valid
    cc = conditions_xy(zone("ring", "exclusion", ring))  # compiled (bands built) here
    m = 4_000
    a = rng.uniform(0, 2 * np.pi, m)
    d = 2_000 + rng.uniform(-150, 150, m)  # most fixes near the boundary: the hard part
    x, y = X0 + d * np.cos(a), Y0 + d * np.sin(a)
    r = rng.uniform(0, 100, m)
    res = ZoneIndex([cc]).evaluate(np.zeros(m, int), np.zeros(m), x=x, y=y, accuracy_m=r)
    pts = shapely.points(x, y)
    dist = shapely.distance(ring.boundary, pts)
    s = np.where(shapely.intersects(ring, pts), dist, -dist)
    cls = np.where(s >= r, 2, np.where(s < -r, 0, 1))
    assert (res.verdict == cls).all()
    scalar = [
        cc.zone("ring").classify(float(x[i]), float(y[i]), float(r[i]))[0] for i in range(200)
    ]
    assert scalar == cls[:200].tolist()


# --------------------------------------------------------------------------- examples


@pytest.fixture(scope="module")
def london() -> object:
    """Exclusion circle 200 m, exclusion square with a hole, inclusion square 20 km."""
    outer = square(X0 + 2000, Y0, 500)
    holed = shapely.Polygon(outer.exterior.coords, [square(X0 + 2000, Y0, 100).exterior.coords])
    return conditions_xy(
        zone("victim", "exclusion", circle=(X0, Y0, 200.0)),
        zone("estate", "exclusion", holed),
        zone("county", "inclusion", square(X0, Y0, 10_000)),
    )


@pytest.mark.parametrize(
    ("x", "y", "acc", "expected"),
    [
        (X0, Y0, 10, ["definite", "clear", "clear"]),
        (X0 + 195, Y0, 10, ["possible", "clear", "clear"]),
        (X0 + 300, Y0, 10, ["clear", "clear", "clear"]),
        (X0 + 2000, Y0, 10, ["clear", "clear", "clear"]),  # in the hole
        (X0 + 2300, Y0, 10, ["clear", "definite", "clear"]),
        (X0 + 2095, Y0, 10, ["clear", "possible", "clear"]),  # disc reaches out of the hole
        (X0 + 9_995, Y0, 10, ["clear", "clear", "possible"]),
        (X0 + 10_200, Y0, 10, ["clear", "clear", "definite"]),
        (X0, Y0, 100, ["definite", "clear", "clear"]),  # 100 m: at the limit, usable
        (X0, Y0, 100.5, ["unusable"] * 3),
        (X0, Y0, math.nan, ["unusable"] * 3),
    ],
)
def test_verdict_table(london, x, y, acc, expected) -> None:
    assert verdicts_of(london, x, y, acc) == expected


def test_depth_is_into_the_breach_region(london) -> None:
    v = london.evaluate_fix(0, x=X0 + 50, y=Y0, accuracy_m=10)
    assert v[0].depth_m == pytest.approx(150.0)
    v = london.evaluate_fix(0, x=X0 + 10_040, y=Y0, accuracy_m=50)
    assert v[2].verdict == "possible" and v[2].depth_m == pytest.approx(40.0)
    v = london.evaluate_fix(0, x=X0 + 9_960, y=Y0, accuracy_m=50)
    assert v[2].verdict == "possible" and v[2].depth_m == pytest.approx(-40.0)


def test_accuracy_scale_and_limit() -> None:
    cc = conditions_xy(
        zone("z", "exclusion", circle=(X0, Y0, 100.0)), max_accuracy_m=50, accuracy_scale=2.0
    )
    assert verdicts_of(cc, X0 + 60, Y0, 25) == ["possible"]  # disc radius 50 > 40 m inside
    assert verdicts_of(cc, X0 + 60, Y0, 15) == ["definite"]  # disc radius 30
    assert verdicts_of(cc, X0 + 60, Y0, 50) == ["possible"]  # at the limit: usable
    assert verdicts_of(cc, X0 + 60, Y0, 51) == ["unusable"]


def test_validity_and_schedule_make_a_zone_inactive() -> None:
    school = parse_schedule(
        [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "16:00"}]
    )
    cc = conditions_xy(
        zone("school", "exclusion", circle=(X0, Y0, 300.0), schedule=school),
        zone(
            "temp",
            "exclusion",
            circle=(X0, Y0, 300.0),
            valid_from_s=utc(2026, 1, 1),
            valid_to_s=utc(2026, 2, 1),
        ),
    )
    monday_9 = utc(2026, 1, 12, 9)
    v = cc.evaluate_fix(monday_9, x=X0, y=Y0, accuracy_m=10)
    assert [x.verdict for x in v] == ["definite", "definite"]
    assert v[0].active_until_s == utc(2026, 1, 12, 16) and v[1].active_until_s == utc(2026, 2, 1)
    v = cc.evaluate_fix(utc(2026, 1, 12, 17), x=X0, y=Y0, accuracy_m=500)  # inactive beats unusable
    assert [x.verdict for x in v] == ["inactive", "unusable"]
    assert v[0].active_until_s is None
    assert [x.code for x in cc.evaluate_fix(utc(2026, 2, 1), x=X0, y=Y0, accuracy_m=10)] == [
        INACTIVE
    ] * 2
    assert [x.code for x in cc.evaluate_fix(utc(2026, 1, 17, 9), x=X0, y=Y0, accuracy_m=150)] == [
        INACTIVE,
        UNUSABLE,
    ]


def test_compile_from_geojson_matches_metres() -> None:
    ring = np.array([[X0, Y0], [X0 + 1000, Y0], [X0 + 1000, Y0 + 800], [X0, Y0 + 800], [X0, Y0]])
    cc = compile_conditions(
        {
            "offender_id": "o1",
            "zones": [
                polygon_feature("poly", ring, valid_from="2026-01-01T00:00:00Z"),
                circle_feature("circ", X0 + 5000, Y0, 250.0, kind="inclusion"),
            ],
        }
    )
    assert cc.zone("poly").geometry.area == pytest.approx(800_000, rel=1e-6)
    assert cc.zone("circ").circle == pytest.approx((X0 + 5000, Y0, 250.0), abs=1e-3)
    assert cc.zone("poly").valid_from_s == utc(2026, 1, 1)
    lon, lat = lonlat(X0 + 500, Y0 + 400)
    by_lonlat = cc.evaluate_fix(utc(2026, 3, 1), lon=float(lon), lat=float(lat), accuracy_m=20)
    by_xy = cc.evaluate_fix(utc(2026, 3, 1), x=X0 + 500, y=Y0 + 400, accuracy_m=20)
    assert [v.verdict for v in by_lonlat] == [v.verdict for v in by_xy] == ["definite", "definite"]


def test_compile_from_the_msgspec_contract() -> None:
    contracts = pytest.importorskip("em_service.contracts")
    lon, lat = lonlat(X0, Y0)
    conditions = msgspec.convert(
        {
            "offender_id": "o1",
            "device_ids": ["d1"],
            "zones": [circle_feature("z1", X0, Y0, 150.0, valid_to="2030-01-01T00:00:00+00:00")],
            "curfews": [
                {
                    "curfew_id": "home",
                    "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
                    "radius_m": 50.0,
                    "windows": [{"days": ["mon"], "start": "19:00", "end": "07:00"}],
                    "exceptions": [{"date": "2026-01-12", "cancelled": True}],
                }
            ],
        },
        contracts.Conditions,
    )
    cc = compile_conditions(conditions)  # a Struct is converted with msgspec.to_builtins
    assert [z.zone_id for z in cc.zones] == ["z1", "home"]
    assert cc.zone("home").kind == "curfew" and cc.zone("z1").valid_to_s == utc(2030, 1, 1)


def bowtie() -> np.ndarray:
    return np.array([[X0, Y0], [X0 + 100, Y0 + 100], [X0 + 100, Y0], [X0, Y0 + 100], [X0, Y0]])


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (
            polygon_feature("bow", bowtie()),
            r"bow: invalid geometry: (Ring )?Self-intersection near lon",
        ),
        (
            polygon_feature(
                "huge", np.array([[X0, Y0], [X0 - 150_000, Y0], [X0, Y0 + 1000], [X0, Y0]])
            ),
            "huge: absurd size: 150.0 km across",
        ),
        (circle_feature("bigc", X0, Y0, 60_000.0), "bigc: absurd size: circle 120.0 km"),
        (
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": []},
                "properties": {"zone_id": "e", "kind": "exclusion"},
            },
            "e: geometry is empty",
        ),
        (
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
                "properties": {"zone_id": "paris", "kind": "exclusion", "radius_m": 10},
            },
            "paris: .* outside the area of use of EPSG:27700",
        ),
        (
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]},
                "properties": {"zone_id": "nor", "kind": "exclusion"},
            },
            "nor: a Point needs a positive radius_m",
        ),
        (
            polygon_feature("rad", square(X0, Y0, 100).exterior.coords[:], radius_m=5.0),
            "rad: radius_m is only for a Point",
        ),
        (
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[-0.1, 51.5], [-0.2, 51.5]]},
                "properties": {"zone_id": "line", "kind": "exclusion"},
            },
            "line: geometry type 'LineString'",
        ),
        (
            polygon_feature(
                "thin", np.array([[X0, Y0], [X0 + 1000, Y0], [X0 + 1000, Y0 + 0.0005], [X0, Y0]])
            ),
            "thin: degenerate polygon",
        ),
        (
            polygon_feature("k", square(X0, Y0, 100).exterior.coords[:], kind="forbidden"),
            "k: kind 'forbidden'",
        ),
        (
            polygon_feature(
                "t", square(X0, Y0, 100).exterior.coords[:], valid_from="2026-01-01T00:00:00"
            ),
            "t: timestamp .* has no UTC offset",
        ),
        (
            polygon_feature(
                "w",
                square(X0, Y0, 100).exterior.coords[:],
                valid_from="2026-02-01T00:00:00Z",
                valid_to="2026-01-01T00:00:00Z",
            ),
            "w: valid_to must be after valid_from",
        ),
    ],
)
def test_bad_zones_raise_a_clear_error_naming_the_zone(feature, message) -> None:
    with pytest.raises(ConditionsError, match=message) as info:
        compile_conditions({"offender_id": "o1", "zones": [feature]})
    assert info.value.item_id == feature["properties"]["zone_id"]


def test_geometry_errors_are_conditions_errors_and_value_errors() -> None:
    with pytest.raises(GeometryError) as info:
        compile_conditions({"zones": [polygon_feature("bow", bowtie())]})
    assert isinstance(info.value, ValueError)


def test_conditions_level_errors() -> None:
    with pytest.raises(ConditionsError, match="unknown timezone"):
        compile_conditions({"timezone": "Nowhere/Land"})
    feature = circle_feature("a", X0, Y0, 10.0)
    with pytest.raises(ConditionsError, match="a: zone_id/curfew_id is not unique"):
        compile_conditions({"zones": [feature, feature]})
    with pytest.raises(ConditionsError, match="c: a curfew needs at least one window"):
        compile_conditions(
            {
                "curfews": [
                    {
                        "curfew_id": "c",
                        "geometry": feature["geometry"],
                        "radius_m": 5.0,
                        "windows": [],
                    }
                ]
            }
        )
    with pytest.raises(GeometryError, match="unknown CRS"):
        compile_conditions({}, crs="EPSG:999999")


def test_multipolygon_zone() -> None:
    a, b = square(X0, Y0, 100), square(X0 + 1000, Y0, 100)
    cc = conditions_xy(zone("m", "exclusion", shapely.MultiPolygon([a, b])))
    assert verdicts_of(cc, X0 + 1000, Y0, 10) == ["definite"]
    assert verdicts_of(cc, X0 + 500, Y0, 10) == ["clear"]
    assert verdicts_of(cc, X0 + 905, Y0, 10) == ["possible"]


def test_shared_zone_geometry_is_compiled_once() -> None:
    geom = square(X0, Y0, 2000)
    a = conditions_xy(zone("a", "inclusion", geom))
    b = conditions_xy(zone("b", "inclusion", geom), offender_id="o2")
    assert a.zones[0].grid is b.zones[0].grid


def test_conditions_validity_bounds_every_zone_and_curfew() -> None:
    cc = compile_conditions(
        {
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2026-02-01T00:00:00Z",
            "zones": [circle_feature("z", X0, Y0, 100.0, valid_to="2026-03-01T00:00:00Z")],
            "curfews": [
                {
                    "curfew_id": "c",
                    "geometry": circle_feature("c", X0, Y0, 1.0)["geometry"],
                    "radius_m": 30.0,
                    "windows": [{"days": ["thu"], "start": "00:00", "all_day": True}],
                }
            ],
        }
    )
    assert [z.valid_to_s for z in cc.zones] == [utc(2026, 2, 1)] * 2
    inside = cc.evaluate_fix(utc(2026, 1, 15, 12), x=X0, y=Y0, accuracy_m=5)  # a Thursday
    after = cc.evaluate_fix(utc(2026, 2, 5, 12), x=X0, y=Y0, accuracy_m=5)  # also a Thursday
    assert [v.verdict for v in inside] == ["definite", "at_home"]
    assert [v.verdict for v in after] == ["inactive", "not_applicable"]
