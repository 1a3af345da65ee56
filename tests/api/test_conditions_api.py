"""PUT conditions (admin): checked as the worker checks them, published keyed by offender, stored."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from em_service import kafka_io
from em_service.conditions.validate import version_id
from em_service.contracts import Conditions
from em_service.store import audit, offenders
from tests.api.conftest import Api
from tests.conditions.cases import REFUSED, VALID_ZONE, doc

pytestmark = pytest.mark.kafka

ZONE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-0.97, 51.45]},
    "properties": {"zone_id": "zone-1", "kind": "exclusion", "radius_m": 200.0},
}


def test_conditions_are_published_stored_and_audited(kafka_api: Api) -> None:
    body = {"offender_id": "off-3", "device_ids": ["tag-3"], "zones": [ZONE]}
    mark = asyncio.run(
        kafka_io.end_offsets(
            kafka_api.settings.kafka_bootstrap, kafka_api.settings.topic_conditions
        )
    )
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions", headers=kafka_api.headers("admin"), json=body
    )
    assert r.status_code == 200, r.text
    assert r.json()["topic"] == kafka_api.settings.topic_conditions
    (record,) = asyncio.run(
        kafka_io.read_since(
            kafka_api.settings.kafka_bootstrap,
            kafka_api.settings.topic_conditions,
            mark or None,
            want=1,
            timeout_s=20,
        )
    )
    published = msgspec.json.decode(record.value, type=Conditions)
    assert record.key == b"off-3" and published.zones[0].properties.zone_id == "zone-1"
    assert published.updated_at is not None  # stamped by the API
    with kafka_api.store.read() as s:
        assert offenders.current_devices(s, "off-3") == ["tag-3"]
        (entry,), _ = audit.list_entries(s, action="conditions.put")
    assert (entry.actor, entry.offender_id) == ("admin-1", "off-3")
    listed = kafka_api.client.get("/api/v1/offenders", headers=kafka_api.headers("admin")).json()
    assert "off-3" in [o["offender_id"] for o in listed["items"]]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"offender_id": "off-3"}, 422, "missing required field `device_ids`"),
        ({"offender_id": "off-4", "device_ids": ["tag-4"]}, 422, "differs from the key"),
        (
            {
                "offender_id": "off-3",
                "device_ids": ["tag-3"],
                "zones": [{**ZONE, "properties": {"zone_id": "z", "kind": "exclusion"}}],
            },
            422,
            "needs radius_m",
        ),
        (
            {"offender_id": "off-3", "device_ids": ["tag-3"], "timezone": "Mars/Olympus"},
            422,
            "unknown timezone",
        ),
        ({"offender_id": "off-3", "device_ids": ["tag-3"], "colour": "red"}, 422, "unknown field"),
        (
            {
                "offender_id": "off-3",
                "device_ids": ["tag-3"],
                "curfews": [
                    {
                        "curfew_id": "home",
                        "geometry": {"type": "Point", "coordinates": [-0.97, 51.45]},
                        "radius_m": 50.0,
                        "windows": [{"days": ["mon"], "start": "19:00", "end": "07:00"}],
                        "exceptions": [{"date": "2026-12-25", "cancelled": True}] * 2,
                    }
                ],
            },
            422,
            "home: two exceptions for 2026-12-25",  # a schedule the worker cannot use
        ),
        (
            {
                "offender_id": "off-3",
                "device_ids": ["tag-3"],
                "curfews": [
                    {
                        "curfew_id": "home",
                        "geometry": {"type": "Point", "coordinates": [-0.97, 51.45]},
                        "radius_m": 50.0,
                        "windows": [{"days": ["mon"], "start": "19:00", "end": "19:00"}],
                    }
                ],
            },
            422,
            "start equals end (19:00); use all_day: true (without end) for 24 hours"
            " - at `$.curfews[0].windows[0]`",  # once silently 24 h
        ),
        ({"offender_id": "off-3", "device_ids": ["tag-1"]}, 409, "tag-1"),  # worn by off-1
    ],
)
def test_invalid_conditions_are_refused_with_a_message(
    kafka_api: Api, body, status, message
) -> None:
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions", headers=kafka_api.headers("admin"), json=body
    )
    assert r.status_code == status and message in r.json()["detail"], r.text


def test_not_json_is_422(kafka_api: Api) -> None:
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions",
        headers={**kafka_api.headers("admin"), "Content-Type": "application/json"},
        content=b"[1, 2",
    )
    assert r.status_code == 422 and "invalid conditions" in r.json()["detail"]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_conditions_the_worker_refuses_are_422_unpublished_and_unstored(
    kafka_api: Api, case: str
) -> None:
    """Each case seen in probing (formerly 200): 422 with the reason, nothing published or stored."""
    s, admin = kafka_api.settings, kafka_api.headers("admin")
    zones, reason = REFUSED[case]
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_conditions))
    r = kafka_api.client.put(
        "/api/v1/offenders/off-7/conditions", headers=admin, json=doc("off-7", "tag-7", zones=zones)
    )
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"detail"} and reason in r.json()["detail"]
    assert "zone-1" in r.json()["detail"]
    # A valid document after it is the only one on the topic since the mark.
    ok = kafka_api.client.put(
        "/api/v1/offenders/off-8/conditions",
        headers=admin,
        json=doc("off-8", "tag-8", zones=[VALID_ZONE]),
    )
    assert ok.status_code == 200, ok.text
    records = asyncio.run(
        kafka_io.read_since(
            s.kafka_bootstrap, s.topic_conditions, mark or None, want=2, timeout_s=5
        )
    )
    assert [rec.key for rec in records] == [b"off-8"]
    with kafka_api.store.read() as session:
        assert not offenders.exists(session, "off-7")
        assert offenders.device_holders(session, ["tag-7"]) == {}
        entries, _ = audit.list_entries(session, action="conditions.put")
    assert [e.offender_id for e in entries] == ["off-8"]
    shown = kafka_api.client.get("/api/v1/offenders/off-8", headers=admin).json()
    assert shown["conditions_version"] == ok.json()["version"] == version_id(records[0].value)
    assert shown["status"] == "compliant" and shown["conditions_rejected"] is None
