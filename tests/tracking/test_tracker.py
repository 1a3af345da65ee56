"""The tracker without a broker: raw records of several partitions in, outbox, states and offsets out."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts.codec import KEY_MAX_BYTES, encode
from em_service.limits import batch_bytes_bound
from em_service.scenes.config import SceneSettings
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.engine import load_state
from em_service.tracking.tracker import PartitionWork, Tracker
from tests.tracking.test_engine import HOME_X, HOME_Y, ZONE_X, ZONE_Y, _conditions, _fix

T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # a Wednesday morning: no curfew


@dataclass
class Rec:
    """A consumed record (the fields the tracker reads)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _tracker(**settings: object) -> Tracker:
    registry = ConditionsRegistry()
    registry.apply("off-1", _conditions())
    s = Settings(topic_alerts="alerts", topic_dlq="dlq", **settings)
    return Tracker(registry, s, LiveMatcher(SceneSettings(), crs=s.projected_crs))


def _walk(minutes: int, start_offset: int = 0) -> list[Rec]:
    """GPS records of tag-1: at home, then 20 minutes inside the exclusion zone, then home."""
    out = []
    for m in range(minutes):
        inside = 10 <= m < 30
        x, y = (ZONE_X, ZONE_Y) if inside else (HOME_X, HOME_Y)
        value = encode(_fix(T0 + timedelta(minutes=m), x, y))
        out.append(Rec("readings", 0, start_offset + m, b"tag-1", value))
    return out


def test_a_breach_lands_in_the_outbox_once_with_its_state_and_offset() -> None:
    tracker, work = _tracker(), PartitionWork(0)
    records = _walk(40)
    for k in range(0, len(records), 7):  # batches of any size give the same outcome
        tracker.process([(work, r) for r in records[k : k + 7]], T0 + timedelta(minutes=41))
    alerts = [json.loads(o.value) for o in work.outbox if o.topic == "alerts"]
    assert [a["type"] for a in alerts] == ["exclusion_breach", "exclusion_breach_ended"]
    assert all(o.key == b"off-1" for o in work.outbox)
    assert work.next_offset == 40 and work.dirty == {b"tag-1"}
    taken = work.take()
    assert taken is not None and taken.next_offset == 40 and len(taken.outbox) == 2
    ((key, raw),) = taken.changelog
    assert key == b"tag-1" and load_state(raw).offender_id == "off-1"
    assert not work.pending and work.take() is None


def test_bad_records_are_dead_lettered_with_their_key_and_offsets_still_advance() -> None:
    tracker, work = _tracker(), PartitionWork(3)
    good = encode(_fix(T0, HOME_X, HOME_Y))
    batch = [
        Rec("readings", 3, 5, b"tag-1", b"{oops"),
        Rec("readings", 3, 6, b"tag-2", good),  # key is not the reading's device_id
        Rec("readings", 3, 7, b"tag-1", None),
    ]
    tracker.process([(work, r) for r in batch], T0)
    letters = [(o.key, json.loads(o.value)) for o in work.outbox]
    assert [(k, d["reason"], d["source_offset"]) for k, d in letters] == [
        (b"tag-1", "invalid_json", 5),
        (b"tag-2", "wrong_key", 6),
        (b"tag-1", "invalid_json", 7),
    ]
    assert all(o.topic == "dlq" for o in work.outbox)
    assert work.next_offset == 8 and not work.dirty


def test_every_dead_letter_fits_the_producer_limit_whatever_its_key_and_size() -> None:
    tracker, work = _tracker(), PartitionWork(0)
    s = tracker.settings
    key = b"\x00" * 1_047_000  # with its value, the record is within the broker limit
    batch = [
        Rec("readings", 0, 0, key, b"{oops"),
        Rec("readings", 0, 1, b"tag-1", b"{" + b"\x01" * 1_040_000),  # oversize
    ]
    assert all(batch_bytes_bound(len(r.key), len(r.value)) <= 1_048_576 for r in batch)
    tracker.process([(work, r) for r in batch], T0)
    assert len(work.outbox) == 2
    for out in work.outbox:
        assert batch_bytes_bound(len(out.key), len(out.value)) <= s.kafka_max_message_bytes
    huge_key, oversize = (json.loads(o.value) for o in work.outbox)
    assert work.outbox[0].key == key[:KEY_MAX_BYTES]
    assert huge_key["key"] == "\x00" * KEY_MAX_BYTES and not huge_key["truncated"]
    assert oversize["truncated"] and len(base64.b64decode(oversize["original_b64"])) == 16_384


def test_unknown_devices_change_no_state_and_are_dead_lettered_only_if_configured() -> None:
    fix = encode(msgspec.structs.replace(_fix(T0, HOME_X, HOME_Y), device_id="tag-x"))
    for dlq, letters in ((False, 0), (True, 1)):
        tracker, work = _tracker(dlq_unknown_devices=dlq), PartitionWork(0)
        tracker.process([(work, Rec("readings", 0, 0, b"tag-x", fix))], T0)
        assert len(work.outbox) == letters and not work.dirty


def test_states_restored_from_the_changelog_continue_the_episode() -> None:
    tracker, work = _tracker(), PartitionWork(0)
    records = _walk(40)
    tracker.process([(work, r) for r in records[:20]], T0 + timedelta(minutes=21))
    first = [json.loads(o.value)["type"] for o in work.outbox]  # before take() empties it
    taken = work.take()
    assert taken is not None
    restored = PartitionWork(0, restored=dict(taken.changelog))  # another worker takes over
    tracker2 = _tracker()
    tracker2.process([(restored, r) for r in records[20:]], T0 + timedelta(minutes=41))
    second = [json.loads(o.value)["type"] for o in restored.outbox]
    assert first == ["exclusion_breach"] and second == ["exclusion_breach_ended"]


def _reasons(work: PartitionWork) -> list[str | None]:
    return [json.loads(o.value).get("reason") for o in work.outbox]


def test_a_replay_judges_the_age_of_readings_by_its_stream_not_the_date_it_runs() -> None:
    wall = T0 + timedelta(days=5 * 365)  # the replay runs years after the data
    old = T0 - timedelta(days=401)  # absurdly old for the stream (more than max_past_age_s)
    records = [
        Rec("readings", 0, 0, b"tag-1", encode(_fix(T0, HOME_X, HOME_Y))),
        Rec("readings", 0, 1, b"tag-1", encode(_fix(old, HOME_X, HOME_Y))),
    ]
    replay, work = _tracker(rule_clock="event"), PartitionWork(0)
    replay.process([(work, records[0])], wall)
    replay.process([(work, records[1])], wall)
    assert _reasons(work) == ["stale_timestamp"] and work.watermark == T0
    production, work = _tracker(), PartitionWork(0)
    production.process([(work, records[0])], wall)
    assert _reasons(work) == ["stale_timestamp"]  # the wall clock judges in production
