"""The archiver's processing-error path, without a broker: unprojectable fixes are never archived;
a record that fails on its own is dead-lettered and the rest of its batch is written."""

from __future__ import annotations

import base64

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from em_service.archiver import Archiver
from em_service.contracts.codec import encode
from em_service.settings import Settings
from em_service.store import Store, ingest
from em_service.store.models import Fix
from tests.store.factories import gps

#: Readings of any date are valid here (the tests do not depend on today's date).
SETTINGS = Settings(max_past_age_s=1e12, max_future_skew_s=1e12)
READINGS = TopicPartition(SETTINGS.topic_readings, 0)


def _records(*values: bytes) -> dict[TopicPartition, list[ConsumerRecord]]:
    recs = [
        ConsumerRecord(READINGS.topic, 0, k, 0, 0, b"tag-1", v, None, 5, len(v), [])
        for k, v in enumerate(values)
    ]
    return {READINGS: recs}


def _fixes(store: Store) -> list[tuple[float, float]]:
    with store.read() as s:
        return [(f.x_m, f.y_m) for f in s.scalars(select(Fix))]


def test_unprojectable_fixes_are_never_archived(store: Store) -> None:
    archiver = Archiver(SETTINGS, store)
    records = _records(
        encode(gps(seq=1)),
        encode(gps(seq=2, lat=0.0, lon=88.0)),  # x, y = inf in EPSG:27700
        encode(gps(seq=3, lat=48.85, lon=2.35)),  # Paris: outside the area of use
    )
    outcomes = archiver.write(archiver.decode(records))
    assert outcomes["readings", "unprojectable"] == 2 and outcomes["readings", "fixes_offered"] == 1
    ((x, y),) = _fixes(store)
    assert 400_000 < x < 500_000 and 150_000 < y < 200_000


class _Poisoned(Archiver):
    """The real archiver, except that writing a fix of device ``tag-poison`` raises."""

    error: Exception = ValueError("poisoned row")

    def write(self, batch: ingest.Batch):
        if any(f.device_id == "tag-poison" for f in batch.gps):
            raise self.error
        return super().write(batch)


def test_a_record_that_fails_on_its_own_is_dead_lettered_and_its_batch_written(
    store: Store,
) -> None:
    archiver = _Poisoned(SETTINGS, store)
    poison = encode(gps(device_id="tag-poison"))
    records = _records(encode(gps(seq=1)), poison, encode(gps(seq=3)))
    letters = []
    batch = archiver.decode(records, letters)
    with pytest.raises(ValueError):  # the batch as a whole fails
        archiver.write(batch)
    outcomes = archiver.write_one_by_one(records, letters)
    assert outcomes["readings", "fixes_offered"] == 2 and len(_fixes(store)) == 2
    ((letter),) = letters
    assert (letter.reason, letter.detail) == ("processing_error", "ValueError: poisoned row")
    assert (letter.source_topic, letter.source_offset, letter.key) == (READINGS.topic, 1, "tag-1")
    assert base64.b64decode(letter.original_b64) == poison


def test_infrastructure_errors_and_fail_fast_are_raised_not_dead_lettered(store: Store) -> None:
    records = _records(encode(gps(device_id="tag-poison")))
    down = _Poisoned(SETTINGS, store)
    down.error = OperationalError("INSERT", {}, Exception("database is locked"))
    letters: list = []
    with pytest.raises(OperationalError):
        down.write_one_by_one(records, letters)
    fail_fast = _Poisoned(SETTINGS.model_copy(update={"fail_fast": True}), store)
    with pytest.raises(ValueError):
        fail_fast.write_one_by_one(records, letters)
    assert letters == [] and _fixes(store) == []


def test_a_record_whose_decoding_raises_is_dead_lettered_once(store: Store) -> None:
    class _DecodeFails(Archiver):
        def _add(self, batch, msg, now) -> None:
            if msg.offset == 0:
                raise KeyError("odd record")
            super()._add(batch, msg, now)

    archiver = _DecodeFails(SETTINGS, store)
    records = _records(encode(gps(seq=1)), encode(gps(seq=2)))
    letters: list = []
    batch = archiver.decode(records, letters)
    assert len(batch.gps) == 1 and [d.source_offset for d in letters] == [0]
    assert letters[0].detail == "KeyError: 'odd record'"
    archiver.write_one_by_one(records, letters)  # as after a failed batch: no second letter
    assert [d.source_offset for d in letters] == [0] and len(_fixes(store)) == 1
