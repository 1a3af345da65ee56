"""The one check (``conditions.validate.check``): each case seen in probing is refused with its
reason, and the worker's registry refuses exactly the same, keeping what was in force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import (
    MAX_CONDITIONS_BYTES,
    InvalidConditions,
    TooLarge,
    check,
    version_id,
)
from tests.conditions.cases import REFUSED, VALID_ZONE, doc

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
