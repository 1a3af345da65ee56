"""The reading gate: every kind of bad input gets its reason; good input becomes UTC-typed."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import msgspec
import pytest

from em_service.contracts import AlcoholReading, DeadLetter, DeviceEvent, GpsReading
from em_service.contracts.codec import (
    DETAIL_MAX_CHARS,
    KEY_MAX_BYTES,
    Rejected,
    dead_letter,
    dead_letter_key,
    decode_reading,
    encode,
)

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


def _letter(raw: bytes, keep: int | None, *, key: bytes | None = b"tag-1", detail: str = "too big"):
    return dead_letter(
        raw,
        Rejected("oversize", detail),
        topic="em.readings",
        partition=0,
        offset=3,
        key=key,
        now=NOW,
        keep_bytes=keep,
    )


def test_dead_letter_within_keep_bytes_is_whole() -> None:
    raw = bytes(range(256)) * 4
    letter = _letter(raw, keep=len(raw))
    assert base64.b64decode(letter.original_b64) == raw
    assert not letter.truncated
    assert (letter.original_size, letter.original_sha256) == (
        len(raw),
        hashlib.sha256(raw).hexdigest(),
    )


def test_oversize_original_is_cut_to_keep_bytes_with_size_and_sha256_of_the_whole() -> None:
    raw = b'{"type":"gps","pad":"' + bytes(range(256)) * 4000 + b'"}'
    letter = _letter(raw, keep=16_384)
    kept = base64.b64decode(letter.original_b64)
    assert kept == raw[:16_384]
    assert letter.truncated
    assert letter.original_size == len(raw)
    assert letter.original_sha256 == hashlib.sha256(raw).hexdigest()
    assert len(encode(letter)) < 16_384 * 4 // 3 + 2_000  # not the whole original in base64


def test_detail_and_key_are_capped() -> None:
    key = b"\x00" * 5_000
    letter = _letter(b"{}", keep=None, key=key, detail="\x01" * 50_000)
    assert len(letter.detail) == DETAIL_MAX_CHARS and letter.detail.endswith("…")
    assert letter.key == "\x00" * KEY_MAX_BYTES
    assert dead_letter_key(key) == key[:KEY_MAX_BYTES]


def test_letters_written_before_sha256_and_truncated_still_decode() -> None:
    old = {
        "reason": "oversize",
        "detail": "x",
        "source_topic": "em.readings",
        "source_partition": 0,
        "source_offset": 1,
        "key": None,
        "original_b64": "",
        "original_size": 0,
        "rejected_at": "2026-11-21T22:31:00Z",
    }
    letter = msgspec.json.decode(json.dumps(old), type=DeadLetter)
    assert (letter.original_sha256, letter.truncated) == (None, False)
