"""Conditions registry: versions by event time, device lookup, removal, bad documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from em_service.conditions.publish import read_documents
from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions, parse_conditions

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/examples/conditions.examples.json").read_text()
)
BASE = EXAMPLES["valid"][0]


def _doc(**changes: object) -> bytes:
    return json.dumps({**BASE, **changes}).encode()


def _t(hour: int) -> datetime:
    return datetime(2026, 11, 21, hour, tzinfo=UTC)


def test_device_lookup_and_removal() -> None:
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc())
    assert reg.offender_for("tag-0007") == "off-0007"
    assert reg.at("off-0007", _t(12)) is not None
    assert reg.apply("off-0007", None) is None
    assert reg.offender_for("tag-0007") is None
    assert reg.at("off-0007", _t(12)) is None


def test_change_applies_by_event_time() -> None:
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc(updated_at="2026-11-01T00:00:00Z"))
    changed = _doc(updated_at="2026-11-21T10:00:00Z", zones=[])
    reg.apply("off-0007", changed)
    before, after = reg.at("off-0007", _t(9)), reg.at("off-0007", _t(11))
    assert before and len(before.conditions.zones) == 3
    assert after and after.conditions.zones == []


def test_a_tag_is_someones_only_while_their_version_of_that_time_lists_it() -> None:
    """Assigned from 10:00 (a version listing it), unassigned until 14:00 (one without it)."""
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc(updated_at="2026-11-01T00:00:00Z"))
    reg.apply(
        "off-0007", _doc(updated_at="2026-11-21T10:00:00Z", device_ids=["tag-0007", "tag-new"])
    )
    reg.apply("off-0007", _doc(updated_at="2026-11-21T14:00:00Z", device_ids=["tag-new"]))
    assert reg.offender_for("tag-new", _t(9)) is None  # not yet assigned
    assert reg.offender_for("tag-new", _t(11)) == "off-0007"
    assert reg.offender_for("tag-0007", _t(13)) == "off-0007"
    assert reg.offender_for("tag-0007", _t(15)) is None  # unassigned at 14:00
    assert reg.offender_for("tag-new", _t(15)) == "off-0007"
    assert reg.offender_for("tag-0007") == "off-0007"  # without a time: the index


def _moves() -> ConditionsRegistry:
    """off-0007: tag-new from 10:00, tag-0007 dropped at 14:00 (in force until 20:00); off-0042
    wears tag-0007 from 16:00."""
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc(updated_at="2026-11-01T00:00:00Z"))
    reg.apply(
        "off-0007", _doc(updated_at="2026-11-21T10:00:00Z", device_ids=["tag-0007", "tag-new"])
    )
    reg.apply(
        "off-0007",
        _doc(
            updated_at="2026-11-21T14:00:00Z",
            device_ids=["tag-new"],
            valid_to="2026-11-21T20:00:00Z",
        ),
    )
    other = {**EXAMPLES["valid"][1], "updated_at": "2026-11-01T00:00:00Z"}
    reg.apply("off-0042", json.dumps(other).encode())
    moved = {**other, "updated_at": "2026-11-21T16:00:00Z"}
    moved["device_ids"] = [*other["device_ids"], "tag-0007"]
    reg.apply("off-0042", json.dumps(moved).encode())
    return reg


NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("device", "hour", "offender", "since"),
    [
        ("tag-new", 9, None, None),  # assigned from 10:00 only
        ("tag-new", 11, "off-0007", _t(10)),
        ("tag-new", 15, "off-0007", _t(14)),
        ("tag-new", 21, "off-0007", None),  # still theirs, conditions ended at 20:00
        ("tag-0007", 17, "off-0042", _t(16)),  # moved to someone else
        ("tag-0007", 15, None, None),  # unassigned at 14:00, not yet moved
        ("tag-0042", 12, "off-0042", NOV_1),
        ("tag-unknown", 12, None, None),
    ],
)
def test_wearer_is_offender_for_and_version_at_in_one_lookup(
    device: str, hour: int, offender: str | None, since: datetime | None
) -> None:
    """Who wears a tag and their version in force, both by the reading's event time."""
    reg = _moves()
    found = reg.wearer(device, _t(hour))
    assert reg.offender_for(device, _t(hour)) == offender
    if offender is None:
        assert found is None
        return
    assert found is not None and found[0] == offender
    version = found[1]
    assert version is reg.at(offender, _t(hour))
    assert (version.effective_s if version else None) == (since.timestamp() if since else None)


def test_valid_to_ends_conditions() -> None:
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc(valid_to="2026-11-21T10:00:00Z"))
    assert reg.at("off-0007", _t(9)) is not None
    assert reg.at("off-0007", _t(11)) is None


def test_invalid_document_keeps_previous_version() -> None:
    reg = ConditionsRegistry()
    reg.apply("off-0007", _doc())
    with pytest.raises(InvalidConditions, match="device_ids"):
        reg.apply("off-0007", _doc(device_ids=[]))
    assert reg.offender_for("tag-0007") == "off-0007"


def test_self_intersecting_zone_is_rejected_with_its_name() -> None:
    bowtie = [[[-0.97, 51.45], [-0.96, 51.46], [-0.96, 51.45], [-0.97, 51.46], [-0.97, 51.45]]]
    zone = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": bowtie},
        "properties": {"zone_id": "z-bowtie", "kind": "exclusion"},
    }
    with pytest.raises(InvalidConditions, match="z-bowtie"):
        parse_conditions(_doc(zones=[zone]))


def test_read_documents_reports_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([BASE, EXAMPLES["valid"][1]]))
    (tmp_path / "b.json").write_text("{not json")
    (tmp_path / "c.json").write_text(json.dumps({**BASE, "device_ids": []}))
    good, errors = read_documents(tmp_path, crs="EPSG:27700")
    assert [c.offender_id for c in good] == ["off-0007", "off-0042"]
    assert len(errors) == 2 and errors[0].startswith("b.json") and errors[1].startswith("c.json[0]")
