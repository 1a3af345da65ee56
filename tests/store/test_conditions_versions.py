"""The archiver's view of the conditions topic (``store.ingest``): it checks each record with the
worker's own check, stores the version in force, records the newest rejected one with its
reason, and never lets an older record overwrite a newer one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from em_service.conditions.validate import check, version_id
from em_service.store import Store, ingest, offenders
from em_service.store.models import Offender
from tests.conditions.cases import REFUSED, VALID_ZONE, doc

CRS = "EPSG:27700"
T = datetime(2026, 11, 21, 10, tzinfo=UTC)


def _raw(offender_id: str, device_id: str, day: int, zones: list) -> bytes:
    return json.dumps(
        doc(offender_id, device_id, zones=zones, updated_at=f"2026-11-{day:02d}T00:00:00Z")
    ).encode()


def _ingest(
    store: Store, *records: tuple[bytes | None, bytes | None, int], published: datetime = T
) -> dict:
    batch = ingest.Batch()
    for key, raw, offset in records:
        batch.add_conditions(key, raw, published, crs=CRS, position=(0, offset))
    with store.write() as session:
        out = ingest.write(session, batch, crs=CRS)
    return {k: n for k, n in out.items() if k[0] == "conditions"}


def _state(store: Store, offender_id: str) -> offenders.OffenderState | None:
    with store.read() as session:
        return offenders.state(session, offender_id=offender_id)


def test_a_rejected_version_leaves_the_previous_one_in_force(store: Store) -> None:
    v1 = _raw("off-1", "tag-1", 1, [VALID_ZONE])
    zones, reason = REFUSED["bowtie"]
    v2 = _raw("off-1", "tag-1", 2, zones)
    out = _ingest(store, (b"off-1", v1, 0), (b"off-1", v2, 1))
    assert out == {("conditions", "stored"): 1, ("conditions", "rejected"): 1}
    state = _state(store, "off-1")
    assert state.status == "conditions_rejected"
    assert state.conditions_version == version_id(v1)
    assert state.conditions_updated_at == datetime(2026, 11, 1, tzinfo=UTC)
    rejected = state.conditions_rejected
    assert rejected.version == version_id(v2) and reason in rejected.reason
    assert rejected.updated_at == datetime(2026, 11, 2, tzinfo=UTC) and rejected.rejected_at == T
    with store.read() as session:  # the stored document is still v1
        stored = json.loads(session.get(Offender, "off-1").conditions_json)
    assert [z["geometry"] for z in stored["zones"]] == [VALID_ZONE["geometry"]]

    v3 = _raw("off-1", "tag-1", 3, [])
    _ingest(store, (b"off-1", v3, 2))
    state = _state(store, "off-1")
    assert state.status == "compliant" and state.conditions_rejected is None
    assert state.conditions_version == version_id(v3)


def test_a_new_person_with_rejected_conditions_is_not_compliant(store: Store) -> None:
    zones, reason = REFUSED["335_km"]
    _ingest(store, (b"off-9", _raw("off-9", "tag-9", 1, zones), 0))
    state = _state(store, "off-9")
    assert state.status == "conditions_rejected" and reason in state.conditions_rejected.reason
    assert state.conditions_version is None and state.device_ids == []


def test_records_older_than_the_one_applied_are_skipped(store: Store) -> None:
    v1 = _raw("off-1", "tag-1", 1, [VALID_ZONE])
    v2 = _raw("off-1", "tag-1", 2, REFUSED["hole_outside_shell"][0])
    v3 = _raw("off-1", "tag-1", 3, [])
    # The API stored v3 (offset 2) at once; the archiver then meets v1, v2 and v3 in order.
    with store.write() as session:
        checked = check(v3, crs=CRS, key="off-1")
        offenders.put_conditions(
            session,
            conditions=checked.conditions,
            changed_at=T,
            version=version_id(v3),
            position=offenders.Position(0, 2, T),
        )
    out = _ingest(store, (b"off-1", v1, 0), (b"off-1", v2, 1), (b"off-1", v3, 2))
    assert out == {("conditions", "superseded"): 3}
    state = _state(store, "off-1")
    assert state.conditions_version == version_id(v3) and state.status == "compliant"


def test_a_record_for_another_offender_than_its_key_is_a_rejection_of_the_key(
    store: Store,
) -> None:
    _ingest(store, (b"off-2", _raw("off-1", "tag-1", 1, []), 0))
    assert _state(store, "off-1") is None
    assert "differs from the key" in _state(store, "off-2").conditions_rejected.reason


def test_records_without_a_usable_key_are_counted_not_stored(store: Store) -> None:
    out = _ingest(store, (None, _raw("off-1", "tag-1", 1, []), 0), (b"a b", b"{}", 1))
    assert out == {("conditions", "invalid"): 2}
    assert _state(store, "off-1") is None


def test_a_tombstone_clears_conditions_and_rejection(store: Store) -> None:
    v1 = _raw("off-1", "tag-1", 1, [VALID_ZONE])
    v2 = _raw("off-1", "tag-1", 2, REFUSED["outside_crs_area"][0])
    _ingest(store, (b"off-1", v1, 0), (b"off-1", v2, 1), (b"off-1", None, 2))
    state = _state(store, "off-1")
    assert state.conditions_version is None and state.conditions_rejected is None
    assert state.status == "compliant" and state.device_ids == []


def test_a_recreated_topic_is_followed_by_its_newer_timestamps(store: Store) -> None:
    v1 = _raw("off-1", "tag-1", 1, [VALID_ZONE])
    _ingest(store, (b"off-1", v1, 7))
    v2 = _raw("off-1", "tag-1", 2, [])
    assert _ingest(store, (b"off-1", v2, 0)) == {("conditions", "superseded"): 1}
    later = T.replace(hour=11)  # the topic was recreated: offsets start again, time goes on
    assert _ingest(store, (b"off-1", v2, 0), published=later) == {("conditions", "stored"): 1}
    assert _state(store, "off-1").conditions_version == version_id(v2)
