"""Consumer lag in records and seconds, and the worker's freshness gauges (fixed clocks)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from em_service.lag import ConsumerLag
from em_service.tracking.lag import WorkerFreshness, partition_of

TP = TopicPartition("t.readings", 3)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_caught_up_is_zero() -> None:
    lag = ConsumerLag("t-caught-up", Clock(1_000.0))
    lag.processed(TP, 900_000)
    assert lag.observe(TP, highwater=10, position=10) == 0.0
    assert (
        _sample("em_consumer_lag_records", consumer="t-caught-up", topic=TP.topic, partition="3")
        == 0
    )
    assert (
        _sample("em_consumer_lag_seconds", consumer="t-caught-up", topic=TP.topic, partition="3")
        == 0
    )


def test_backlog_age_is_that_of_the_newest_processed_record() -> None:
    clock = Clock(1_000.0)
    lag = ConsumerLag("t-backlog", clock)
    lag.processed(TP, 940_000)  # the newest processed record was appended at t = 940 s
    assert lag.observe(TP, highwater=105, position=5) == 60.0
    clock.now = 1_030.0
    assert lag.observe(TP, highwater=105, position=5) == 90.0
    labels = {"consumer": "t-backlog", "topic": TP.topic, "partition": "3"}
    assert _sample("em_consumer_lag_records", **labels) == 100
    assert _sample("em_consumer_lag_seconds", **labels) == 90


def test_a_new_record_after_an_idle_hour_is_not_an_hour_old() -> None:
    clock = Clock(10_000.0)
    lag = ConsumerLag("t-idle", clock)
    lag.processed(TP, 6_400_000)  # an hour ago
    assert lag.observe(TP, highwater=7, position=7) == 0.0  # caught up, seen at 10 000 s
    clock.now = 10_002.0
    assert lag.observe(TP, highwater=8, position=7) == 2.0  # appended after 10 000 s


def test_unknown_highwater_changes_nothing() -> None:
    lag = ConsumerLag("t-unknown", Clock(5.0))
    assert lag.observe(TP, highwater=None, position=0) == 0.0
    assert (
        _sample("em_consumer_lag_records", consumer="t-unknown", topic=TP.topic, partition="3")
        is None
    )


def test_partitions_moved_away_lose_their_series() -> None:
    lag = ConsumerLag("t-moved", Clock(5.0))
    other = TopicPartition("t.readings", 4)
    lag.observe(TP, 3, 1)
    lag.observe(other, 3, 3)
    lag.keep([other])
    assert (
        _sample("em_consumer_lag_records", consumer="t-moved", topic=TP.topic, partition="3")
        is None
    )
    assert (
        _sample("em_consumer_lag_records", consumer="t-moved", topic=TP.topic, partition="4") == 0
    )
    assert lag.oldest_s() == 0.0


@dataclass
class _Work:
    partition: int


@dataclass
class _Rec:
    key: bytes | None
    timestamp: int


def _on(partition: int, n: int = 2, prefix: str = "tag-") -> list[str]:
    """Device ids whose default partition (of 2) is ``partition``."""
    out = [d for i in range(100) if partition_of(d := f"{prefix}{i}", 2) == partition]
    return out[:n]


def test_heard_counts_enrolled_devices_of_warm_partitions_within_the_window() -> None:
    clock = Clock(1_000.0)
    fresh = WorkerFreshness("t.readings", heard_window_s=900, clock=clock)
    fresh.assigned(0)
    fresh.assigned(1)
    (a0, b0), (a1, b1) = _on(0), _on(1)
    enrolled = [a0, b0, a1, b1]
    fresh.consumed([(_Work(0), _Rec(a0.encode(), 1)), (_Work(1), _Rec(a1.encode(), 2))])
    assert fresh.count(enrolled, 2) == (0, 0), "partitions owned for less than the window"
    clock.now = 1_900.0
    fresh.consumed([(_Work(0), _Rec(b"stranger", 3)), (_Work(0), _Rec(None, 4))])
    assert fresh.count(enrolled, 2) == (4, 2)  # the stranger and the keyless are not enrolled
    clock.now = 1_950.0
    fresh.consumed([(_Work(1), _Rec(b1.encode(), 5))])
    assert fresh.count(enrolled, 2) == (4, 1)  # a0 and a1 were last heard > 900 s ago
    assert a0.encode() not in fresh.heard[0], "forgotten after the window"
    assert fresh.lag.partitions[TopicPartition("t.readings", 1)].newest_ts_s == 0.005


def test_a_partition_taken_over_counts_only_once_warm() -> None:
    clock = Clock(0.0)
    fresh = WorkerFreshness("t.readings", heard_window_s=60, clock=clock)
    fresh.assigned(0)
    clock.now = 100.0
    fresh.assigned(1)  # moved here from a worker that stopped
    enrolled = [*_on(0), *_on(1)]
    assert fresh.count(enrolled, 2) == (2, 0)  # partition 1: not warm, counted in neither
    clock.now = 160.0
    assert fresh.count(enrolled, 2) == (4, 0)
    fresh.dropped(0)
    assert fresh.count(enrolled, 2) == (2, 0)


def test_partition_of_is_kafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    for device in ("tag-1", "scram-it-1", "tag-a", "x"):
        assert partition_of(device, 6) == DefaultPartitioner()(device.encode(), list(range(6)), [])


def test_commit_time_per_partition_from_take_over_and_gone_when_moved() -> None:
    clock = Clock(2_000.0)
    fresh = WorkerFreshness("t.readings", heard_window_s=60, clock=clock)
    fresh.assigned(7)
    assert _sample("em_partition_last_commit_timestamp_seconds", partition="7") == 2_000.0
    clock.now = 2_010.0
    fresh.committed(7)
    assert _sample("em_partition_last_commit_timestamp_seconds", partition="7") == 2_010.0
    fresh.consumed([(_Work(7), _Rec(b"tag-1", 1))])
    fresh.dropped(7)
    assert _sample("em_partition_last_commit_timestamp_seconds", partition="7") is None
    assert 7 not in fresh.heard
