"""Size limits set together: what a dead letter carries is computed, and every letter fits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from em_service.contracts.codec import DETAIL_MAX_CHARS, Rejected, dead_letter, encode
from em_service.limits import (
    LimitsError,
    batch_bytes_bound,
    check_settings,
    dead_letter_capacity,
    largest_value,
    original_keep_bytes,
)
from em_service.settings import Settings
from em_service.tracking.intake import Source, triage

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = [65_536, 1_048_576, 5_000_000]


def _estimate(key_len: int | None, value_len: int) -> int:
    key = None if key_len is None else b"k" * key_len
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"v" * value_len, [])


@pytest.mark.parametrize("key_len", [None, 0, 8, 256])
@pytest.mark.parametrize("value_len", [0, 63, 64, 8_191, 8_192, 1_048_000])
def test_batch_bound_is_aiokafkas_estimate(key_len: int | None, value_len: int) -> None:
    assert batch_bytes_bound(key_len, value_len) == _estimate(key_len, value_len)


@pytest.mark.parametrize("limit", LIMITS)
def test_largest_value_is_the_largest_the_producer_accepts(limit: int) -> None:
    value = largest_value(limit, 256)
    assert _estimate(256, value) <= limit < _estimate(256, value + 1)


def _worst_letter(raw: bytes, keep: int) -> bytes:
    """The biggest letter for ``raw``: detail, key and topic at their caps, escaped in JSON."""
    letter = dead_letter(
        raw,
        Rejected("schema_violation", "\x00" * 10 * DETAIL_MAX_CHARS),
        topic="t" * 249,
        partition=2**31 - 1,
        offset=2**63 - 1,
        key=b"\x01" * 4096,
        now=datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(-timedelta(hours=23))),
        keep_bytes=keep,
    )
    return encode(letter)


@pytest.mark.parametrize("limit", LIMITS)
def test_the_largest_dead_letter_fits_and_the_capacity_is_tight(limit: int) -> None:
    capacity = dead_letter_capacity(limit)
    raw = b"x" * (capacity + 10_000)
    fits = _worst_letter(raw, keep=capacity)
    assert _estimate(256, len(fits)) <= limit  # key: the first 256 bytes of the original key
    # Tight: the bound leaves only what these values do not take (sign, digits of the size).
    assert limit - _estimate(256, len(fits)) < 64
    too_big = _worst_letter(raw, keep=capacity + 48)
    assert _estimate(256, len(too_big)) > limit


def test_capacity_under_the_default_limit() -> None:
    # 1 MiB minus the batch header and the letter's fields, times 3/4 (base64).
    assert 770_000 < dead_letter_capacity(1_048_576) < 786_432


def test_settings_check_refuses_a_reading_limit_no_dead_letter_can_carry() -> None:
    check_settings(Settings())  # the defaults agree
    capacity = dead_letter_capacity(1_048_576)
    check_settings(Settings(max_message_bytes=capacity))
    with pytest.raises(LimitsError) as info:
        check_settings(Settings(max_message_bytes=capacity + 1))
    message = str(info.value)
    assert f"EM_MAX_MESSAGE_BYTES={capacity + 1}" in message
    assert "EM_KAFKA_MAX_MESSAGE_BYTES=1048576" in message and str(capacity) in message


def test_keep_bytes_never_exceed_the_capacity() -> None:
    assert original_keep_bytes(Settings()) == 16_384
    unchecked = Settings(max_message_bytes=2_000_000)
    assert original_keep_bytes(unchecked) == dead_letter_capacity(1_048_576)


def test_a_reading_just_under_the_broker_limit_gives_a_letter_under_the_producer_limit() -> None:
    settings = Settings()
    size = largest_value(settings.kafka_max_message_bytes, len(b"tag-1"))
    raw = b'{"type":"gps","pad":"' + b"\x00" * (size - 23) + b'"}'
    assert len(raw) == size
    letter = triage(raw, Source("em.readings", 0, 5, b"tag-1"), settings, NOW)
    value = encode(letter)
    assert letter.reason == "oversize" and letter.truncated
    assert letter.original_size == size
    assert json.loads(value)["original_b64"]  # a prefix is kept
    assert _estimate(len(b"tag-1"), len(value)) <= settings.kafka_max_message_bytes
    assert len(value) < 16_384 * 4 // 3 + 2_000
