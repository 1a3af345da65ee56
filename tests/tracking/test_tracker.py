"""The tracker without a broker: raw records of several partitions in, outbox, states and offsets out."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import GpsReading, Scene
from em_service.contracts.codec import KEY_MAX_BYTES, encode
from em_service.limits import batch_bytes_bound
from em_service.scenes.config import SceneSettings
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.engine import Engine, dump_state, load_state
from em_service.tracking.intake import project_fixes
from em_service.tracking.tracker import PartitionWork, Tracker
from geofences.projection import get_projector
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


# --- Poison pills: a record that makes a rule raise, a fix that cannot be projected -------------


class _Poisoned(Engine):
    """The real engine, except that a fix with accuracy 13 m raises after changing the state."""

    def on_reading(self, state, reading, **kw):  # type: ignore[override]
        out = super().on_reading(state, reading, **kw)
        if isinstance(reading, GpsReading) and reading.accuracy_m == 13.0:
            raise RuntimeError("boom")
        return out


def _poisoned(**settings: object) -> Tracker:
    tracker = _tracker(**settings)
    tracker.engine = _Poisoned(tracker.registry, tracker.settings)
    return tracker


def _poison(minute: int, offset: int) -> Rec:
    """A fix inside the exclusion zone that makes the poisoned engine raise."""
    value = encode(_fix(T0 + timedelta(minutes=minute), ZONE_X, ZONE_Y, acc=13.0))
    return Rec("readings", 0, offset, b"tag-1", value)


def test_a_record_that_raises_is_dead_lettered_its_state_restored_and_the_next_goes_on() -> None:
    clean, poisoned = _walk(40), _walk(40)
    poisoned.insert(10, _poison(10, 10))  # raises after the rules moved the episode on
    for k, rec in enumerate(poisoned):
        rec.offset = k
    now = T0 + timedelta(minutes=41)
    outs = []
    for tracker, records in ((_tracker(), clean), (_poisoned(), poisoned)):
        work = PartitionWork(0)
        tracker.process([(work, r) for r in records[:10]], now)
        tracker.process([(work, r) for r in records[10:]], now)  # the poison heads this batch
        outs.append((work.outbox, work.take()))
    (clean_out, clean_taken), (out, taken) = outs
    letters = [json.loads(o.value) for o in out if o.topic == "dlq"]
    assert [(d["reason"], d["detail"], d["source_offset"]) for d in letters] == [
        ("processing_error", "RuntimeError: boom", 10)
    ]
    assert base64.b64decode(letters[0]["original_b64"]) == poisoned[10].value
    # Everything else is as if the poison had never been there: same alerts, same state.
    assert [o for o in out if o.topic == "alerts"] == clean_out
    assert taken is not None and clean_taken is not None
    assert taken.changelog == clean_taken.changelog and taken.next_offset == 41


def test_the_state_before_the_failed_record_is_restored_exactly() -> None:
    tracker, work = _poisoned(), PartitionWork(0)
    now = T0 + timedelta(minutes=20)
    tracker.process([(work, r) for r in _walk(10)], now)
    work.take()
    before = dump_state(work.state(b"tag-1"))
    tracker.process([(work, _poison(10, 10))], now)
    assert dump_state(work.state(b"tag-1")) == before
    assert not work.dirty and work.next_offset == 11
    assert [json.loads(o.value)["reason"] for o in work.outbox] == ["processing_error"]
    # A changed state not yet serialised is restored too (its snapshot is taken on need).
    tracker.process([(work, _walk(12)[11])], now)
    changed = dump_state(work.state(b"tag-1"))
    assert changed != before and work.dirty == {b"tag-1"}
    tracker.process([(work, _poison(12, 12))], now)
    assert dump_state(work.state(b"tag-1")) == changed and work.dirty == {b"tag-1"}


def test_a_new_device_whose_first_record_fails_keeps_no_state() -> None:
    tracker, work = _poisoned(), PartitionWork(0)
    tracker.process([(work, _poison(0, 0))], T0 + timedelta(minutes=1))
    assert work.device_keys() == [] and not work.dirty and work.take() is not None


def test_fail_fast_re_raises() -> None:
    tracker, work = _poisoned(fail_fast=True), PartitionWork(0)
    with pytest.raises(RuntimeError, match="boom"):
        tracker.process([(work, _poison(0, 0))], T0 + timedelta(minutes=1))


def test_a_tick_that_raises_leaves_the_state_and_the_other_devices_go_on() -> None:
    tracker, work = _tracker(), PartitionWork(0)
    tracker.process([(work, r) for r in _walk(5)], T0 + timedelta(minutes=5))
    work.take()
    before = dump_state(work.state(b"tag-1"))

    def on_tick(state, device_id, **kw):
        state.offender_id = "someone else"  # a half-done change, then a failure
        raise ValueError("bad tick")

    tracker.engine.on_tick = on_tick  # type: ignore[method-assign]
    tracker.tick(work, T0 + timedelta(hours=2))
    assert dump_state(work.state(b"tag-1")) == before and not work.pending
    tracker.settings.fail_fast = True
    with pytest.raises(ValueError, match="bad tick"):
        tracker.tick(work, T0 + timedelta(hours=2))


def test_fixes_that_cannot_be_projected_are_dead_lettered_at_intake() -> None:
    tracker, work = _tracker(), PartitionWork(0)
    scene = Scene(
        scene_id="sc-1",
        crime_reference="CR/1",
        crime_type="burglary_dwelling",
        lat=51.45,
        lon=-0.98,
        window_start=T0 - timedelta(hours=1),
        window_end=T0 + timedelta(hours=1),
        reported_at=T0 + timedelta(hours=2),
        radius_m=100.0,
    )
    assert tracker.live.upsert(scene, now=T0)  # an open scene: live matching runs for fixes
    far = [(0.0, 88.0), (48.85, 2.35)]  # infinite in EPSG:27700; Paris, outside its area of use
    records = [
        Rec("readings", 0, k, b"tag-1", encode(_fix(T0, HOME_X, HOME_Y)))
        for k in range(len(far) + 1)
    ]
    for rec, (lat, lon) in zip(records, far, strict=False):
        fix = msgspec.structs.replace(_fix(T0, HOME_X, HOME_Y), lat=lat, lon=lon)
        rec.value = encode(fix)
    tracker.process([(work, r) for r in records], T0 + timedelta(minutes=1))
    letters = [json.loads(o.value) for o in work.outbox]
    assert [(d["reason"], d["source_offset"]) for d in letters] == [
        ("unprojectable", 0),
        ("unprojectable", 1),
    ]
    assert "EPSG:27700" in letters[0]["detail"] and "inf" in letters[0]["detail"]
    assert work.dirty == {b"tag-1"}  # the third, valid fix went on
    assert work.state(b"tag-1").silence.last_ts == T0


def test_project_fixes_projects_in_bulk_and_rejects_only_the_unprojectable() -> None:
    ok = _fix(T0, HOME_X, HOME_Y)
    bad = msgspec.structs.replace(ok, lat=0.0, lon=88.0)
    projector = get_projector("EPSG:27700")
    p = project_fixes([ok, None, bad, ok], projector)  # type: ignore[list-item]
    assert list(p.rejected) == [2] and p.rejected[2].reason == "unprojectable"
    assert p.x[0] == pytest.approx(HOME_X, abs=0.01) and p.y[3] == pytest.approx(HOME_Y, abs=0.01)
    assert np.isnan(p.x[1])


def _alerts_of(tracker: Tracker, records: list[Rec]) -> tuple[list, list[dict]]:
    work = PartitionWork(0)
    tracker.process([(work, r) for r in records], T0 + timedelta(minutes=41))
    alerts = [o for o in work.outbox if o.topic == "alerts"]
    return alerts, [json.loads(o.value) for o in work.outbox if o.topic == "dlq"]


def test_a_batch_evaluation_that_raises_falls_back_to_one_fix_at_a_time() -> None:
    class _BatchFails(Engine):
        def evaluate_batch(self, readings, xy=None):  # type: ignore[override]
            raise RuntimeError("batch")

    tracker = _tracker()
    tracker.engine = _BatchFails(tracker.registry, tracker.settings)
    clean, _ = _alerts_of(_tracker(), _walk(40))
    alerts, letters = _alerts_of(tracker, _walk(40))
    assert alerts == clean and len(clean) == 2 and letters == []


def test_a_batch_projection_that_raises_isolates_the_fix_that_makes_it_raise() -> None:
    class _Fragile:
        """The real projection, except that any array holding lon 1.5 raises."""

        def __init__(self, real) -> None:
            self.real, self.crs, self.area_of_use = real, real.crs, real.area_of_use

        def to_xy_checked(self, lon, lat):
            if (np.asarray(lon) == 1.5).any():
                raise RuntimeError("proj down")
            return self.real.to_xy_checked(lon, lat)

    tracker = _tracker()
    tracker.projector = _Fragile(tracker.projector)  # type: ignore[assignment]
    records = _walk(40)
    odd = msgspec.structs.replace(_fix(T0 - timedelta(minutes=1), HOME_X, HOME_Y), lon=1.5)
    records.insert(0, Rec("readings", 0, 99, b"tag-1", encode(odd)))
    clean, _ = _alerts_of(_tracker(), _walk(40))
    alerts, letters = _alerts_of(tracker, records)
    assert alerts == clean
    assert [(d["reason"], d["detail"], d["source_offset"]) for d in letters] == [
        ("processing_error", "RuntimeError: proj down", 99)
    ]
