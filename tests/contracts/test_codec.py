"""The reading gate: every kind of bad input gets its reason; good input becomes UTC-typed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from em_service.contracts import AlcoholReading, DeviceEvent, GpsReading
from em_service.contracts.codec import Rejected, dead_letter, decode_reading

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = {
    "type": "gps",
    "device_id": "tag-1",
    "ts": "2026-11-22T12:59:00+01:00",
    "lat": 51.45,
    "lon": -0.97,
    "accuracy_m": 8,
}


def _raw(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_good_reading_is_typed_and_utc() -> None:
    reading = decode_reading(_raw(), now=NOW)
    assert isinstance(reading, GpsReading)
    assert reading.ts == datetime(2026, 11, 22, 11, 59, tzinfo=UTC)
    assert reading.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 20_000, "oversize"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b'{"lat": NaN}', "invalid_json"),
        (b"[1, 2, 3]", "schema_violation"),
        (_raw(type="wifi"), "unknown_type"),
        (_raw(lat=91.0), "schema_violation"),
        (_raw(lat=float("inf")), "invalid_json"),  # json.dumps writes Infinity: not JSON
        (_raw(lat=0).replace(b'"lat": 0', b'"lat": 1e999'), "schema_violation"),
        (_raw(lon="0.1"), "schema_violation"),
        (_raw(ts="2026-11-22T12:00:00"), "schema_violation"),
        (_raw(accuracy_m=-1), "schema_violation"),
        (_raw(extra=1), "schema_violation"),
        (_raw(ts="2026-11-22T13:00:00Z"), "future_timestamp"),
        (_raw(ts="2020-01-01T00:00:00Z"), "stale_timestamp"),
    ],
)
def test_bad_readings_are_rejected_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        decode_reading(raw, now=NOW)
    assert info.value.reason == reason
    assert info.value.detail


def test_other_reading_types() -> None:
    alcohol = {
        "type": "alcohol",
        "device_id": "s-1",
        "ts": "2026-11-22T11:00:00Z",
        "tac_g_dl": 0.02,
        "skin_temp_c": 33.0,
        "ir_value": 1000,
    }
    event = {
        "type": "event",
        "device_id": "t-1",
        "ts": "2026-11-22T11:00:00Z",
        "event": "strap_tamper",
    }
    assert isinstance(decode_reading(json.dumps(alcohol).encode(), now=NOW), AlcoholReading)
    assert isinstance(decode_reading(json.dumps(event).encode(), now=NOW), DeviceEvent)


def test_dead_letter_keeps_original_bytes() -> None:
    raw = b'{"type": "gps", "lat": 200}'
    with pytest.raises(Rejected) as info:
        decode_reading(raw, now=NOW)
    letter = dead_letter(
        raw, info.value, topic="em.readings", partition=1, offset=7, key=b"tag-1", now=NOW
    )
    assert base64.b64decode(letter.original_b64) == raw
    assert (letter.reason, letter.source_offset, letter.key) == ("schema_violation", 7, "tag-1")
