"""The one check (``conditions.validate.check``): each case seen in probing is refused with its
reason, and the worker's registry refuses exactly the same, keeping what was in force."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import (
    MAX_CONDITIONS_BYTES,
    InvalidConditions,
    TooLarge,
    _decoder,
    check,
    check_vertices,
    version_id,
)
from em_service.settings import Settings
from geofences.curfew import curfew_windows
from tests.conditions.cases import REFUSED, VALID_ZONE, circle_ring, doc, polygon_zone

CRS = "EPSG:27700"
EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/examples/conditions.examples.json").read_text()
)
CURFEW = {
    "curfew_id": "home",
    "geometry": {"type": "Point", "coordinates": [-0.97, 51.45]},
    "radius_m": 50.0,
    "windows": [{"days": ["mon"], "start": "19:00", "end": "07:00"}],
}


def _raw(**fields: object) -> bytes:
    return json.dumps(doc("off-1", "tag-1", **fields)).encode()


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_seen_case_is_refused_with_its_reason(case: str) -> None:
    zones, reason = REFUSED[case]
    with pytest.raises(InvalidConditions, match=reason) as refused:
        check(_raw(zones=zones), crs=CRS)
    assert "zone-1" in str(refused.value)  # names the zone at fault


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_registry_refuses_the_same_and_keeps_the_version_in_force(case: str) -> None:
    registry = ConditionsRegistry(CRS)
    before = _raw(zones=[VALID_ZONE], updated_at="2026-11-01T00:00:00Z")
    registry.apply("off-1", before)
    zones, reason = REFUSED[case]
    with pytest.raises(InvalidConditions, match=reason):
        registry.apply("off-1", _raw(zones=zones, updated_at="2026-11-02T00:00:00Z"))
    latest = registry.latest("off-1")
    assert latest is not None and latest.updated_at.day == 1
    assert registry.offender_for("tag-1") == "off-1"
    fresh = ConditionsRegistry(CRS)  # a new person: nothing is registered at all
    with pytest.raises(InvalidConditions, match=reason):
        fresh.apply("off-1", _raw(zones=zones))
    assert len(fresh) == 0 and fresh.offender_for("tag-1") is None


def test_two_exceptions_for_one_date_are_refused() -> None:
    exceptions = [{"date": "2026-12-25", "cancelled": True}] * 2
    with pytest.raises(InvalidConditions, match="home: two exceptions for 2026-12-25"):
        check(_raw(curfews=[{**CURFEW, "exceptions": exceptions}]), crs=CRS)


def test_zone_validity_must_fit_its_own_interval() -> None:
    zone = {
        **VALID_ZONE,
        "properties": {
            **VALID_ZONE["properties"],
            "valid_from": "2026-11-02T00:00:00Z",
            "valid_to": "2026-11-01T00:00:00Z",
        },
    }
    with pytest.raises(InvalidConditions, match="valid_to must be after valid_from"):
        check(_raw(zones=[zone]), crs=CRS)


def test_a_body_for_another_offender_than_the_key_is_refused() -> None:
    with pytest.raises(InvalidConditions, match="differs from the key 'off-2'"):
        check(_raw(), crs=CRS, key="off-2")
    with pytest.raises(InvalidConditions, match="differs from the key"):
        ConditionsRegistry(CRS).apply("off-2", _raw())


def test_oversize_documents_are_refused() -> None:
    raw = _raw(zones=[VALID_ZONE]).replace(b'"exclusion"', b'"exclusion"' + b" " * 1_100_000)
    assert len(raw) > MAX_CONDITIONS_BYTES
    with pytest.raises(TooLarge, match="limit is 1048576"):
        check(raw, crs=CRS)


def test_every_valid_example_passes_and_compiles() -> None:
    for example in EXAMPLES["valid"]:
        checked = check(json.dumps(example), crs=CRS, key=example["offender_id"])
        assert len(checked.compiled.zones) == len(example.get("zones", [])) + len(
            example.get("curfews", [])
        )


def test_version_id_is_a_stable_content_hash() -> None:
    assert version_id(b"{}") == version_id(b"{}") != version_id(b"{ }")
    assert len(version_id(b"{}")) == 16


# --- Issue 13 finding 11: windows whose end equals their start; vertex caps ---------------------

CURFEW_NOON = {**CURFEW, "windows": [{"days": ["mon"], "start": "12:00", "end": "12:00"}]}
EQUAL_WINDOWS = {
    "curfew window": (dict(curfews=[CURFEW_NOON]), "$.curfews[0].windows[0]"),
    "zone schedule": (
        dict(
            zones=[
                {
                    **VALID_ZONE,
                    "properties": {
                        **VALID_ZONE["properties"],
                        "schedule": [{"days": ["sat"], "start": "00:00", "end": "00:00"}],
                    },
                }
            ]
        ),
        "$.zones[0].properties.schedule[0]",
    ),
    "curfew exception": (
        dict(
            curfews=[
                {**CURFEW, "exceptions": [{"date": "2026-12-24", "start": "21:00", "end": "21:00"}]}
            ]
        ),
        "$.curfews[0].exceptions[0]",
    ),
}


@pytest.mark.parametrize("case", sorted(EQUAL_WINDOWS))
def test_a_window_whose_end_equals_its_start_is_refused_naming_it(case: str) -> None:
    fields, path = EQUAL_WINDOWS[case]
    with pytest.raises(InvalidConditions) as refused:
        check(_raw(**fields), crs=CRS)
    assert "start equals end" in str(refused.value) and "all_day: true" in str(refused.value)
    assert f"at `{path}`" in str(refused.value)
    with pytest.raises(InvalidConditions, match="start equals end"):  # the worker's path
        ConditionsRegistry(CRS).apply("off-1", _raw(**fields))


def test_all_day_is_a_24_hour_window_from_start() -> None:
    curfew = {**CURFEW, "windows": [{"days": ["sat"], "start": "00:00", "all_day": True}]}
    compiled = check(_raw(curfews=[curfew]), crs=CRS).compiled

    t0 = datetime(2026, 1, 10, tzinfo=UTC).timestamp()  # a Saturday (GMT)
    (window,) = curfew_windows(compiled, "home", t0 - 3600, t0 + 3600)
    assert (window.start_s, window.end_s) == (t0, t0 + 86400)


@pytest.mark.parametrize(
    ("window", "phrase"),
    [
        ({"days": ["sat"], "start": "00:00", "end": "01:00", "all_day": True}, "not both"),
        ({"days": ["sat"], "start": "00:00"}, "needs end"),
    ],
)
def test_all_day_and_end_are_exclusive_and_one_is_needed(window: dict, phrase: str) -> None:
    with pytest.raises(InvalidConditions, match=phrase):
        check(_raw(curfews=[{**CURFEW, "windows": [window]}]), crs=CRS)


def test_a_polygon_at_the_vertex_cap_is_accepted() -> None:
    checked = check(_raw(zones=[polygon_zone([circle_ring(5_000)])]), crs=CRS)
    assert len(checked.compiled.zones) == 1


def test_holes_count_towards_the_polygon_cap() -> None:
    shell = circle_ring(4_000)
    hole = circle_ring(1_001, radius_m=500.0)[::-1]
    with pytest.raises(InvalidConditions, match="zone-1: polygon has 5,001 vertices"):
        check(_raw(zones=[polygon_zone([shell, hole])]), crs=CRS)


def test_each_polygon_of_a_multipolygon_and_a_curfew_address_is_capped() -> None:
    multi = {
        "type": "Feature",
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[circle_ring(100)], [circle_ring(5_001, lon=-0.9)]],
        },
        "properties": {"zone_id": "zone-m", "kind": "exclusion"},
    }
    with pytest.raises(InvalidConditions, match="zone-m: polygon 2 of 2 has 5,001 vertices"):
        check(_raw(zones=[multi]), crs=CRS)
    address = {**CURFEW, "geometry": {"type": "Polygon", "coordinates": [circle_ring(5_001)]}}
    del address["radius_m"]
    with pytest.raises(InvalidConditions, match="home: polygon has 5,001 vertices"):
        check(_raw(curfews=[address]), crs=CRS)


def test_the_whole_document_is_capped() -> None:
    zones = [
        polygon_zone([circle_ring(4_001, lon=-0.9 - 0.1 * i)], zone_id=f"z{i}") for i in range(5)
    ]
    with pytest.raises(
        InvalidConditions,
        match="conditions have 20,005 polygon vertices in all; the limit is 20,000",
    ):
        check(_raw(zones=zones), crs=CRS)
    with pytest.raises(InvalidConditions, match="the limit is 20,000"):  # the worker's path
        ConditionsRegistry(CRS).apply("off-1", _raw(zones=zones))


def test_the_caps_follow_the_settings() -> None:
    raw = _raw(zones=[polygon_zone([circle_ring(101)])])
    with pytest.raises(InvalidConditions, match="the limit is 100 per polygon"):
        check(raw, crs=CRS, max_polygon_vertices=100, max_vertices=1_000)
    with pytest.raises(InvalidConditions, match="the limit is 50 "):
        check(raw, crs=CRS, max_polygon_vertices=1_000, max_vertices=50)


def test_a_document_at_the_vertex_cap_fits_the_request_size_limits() -> None:
    """The cap, not the byte limit, refuses: 20,000 vertices at full double precision fit in
    MAX_CONDITIONS_BYTES and the API's body limit (which let ~45,000 rounded vertices through)."""

    def full_precision(ring: list[list[float]]) -> list[list[float]]:
        return [[lon + 1.234567890123e-9, lat + 1.234567890123e-9] for lon, lat in ring]

    zones = [
        polygon_zone([full_precision(circle_ring(5_000, lon=-0.9 - 0.1 * i))], zone_id=f"z{i}")
        for i in range(4)
    ]
    raw = _raw(zones=zones)
    settings = Settings()
    assert len(raw) < min(MAX_CONDITIONS_BYTES, settings.api_conditions_max_body_bytes)
    assert settings.max_conditions_vertices == 4 * settings.max_zone_vertices == 20_000
    assert check_vertices(_decoder.decode(raw), 5_000, 20_000) == 20_000
