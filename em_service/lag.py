"""Per-partition consumer lag, in records and in seconds, for every consumer of the service.

``em_consumer_lag_records{consumer,topic,partition}`` is the partition's high water mark minus
the consumer's position. ``em_consumer_lag_seconds`` estimates the age of the oldest record not
yet processed: the next record was appended after the newest processed one (its Kafka
timestamp) and after the last moment the consumer was seen caught up, so its age is at most
``now − max(those two)`` — exact to within one observation interval. It is 0 when caught up.
Consumers: ``worker`` (readings), ``archiver`` (readings, alerts, conditions), ``scenes``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

LAG_RECORDS = Gauge(
    "em_consumer_lag_records",
    "Records of a partition not yet processed by a consumer (high water − position)",
    ["consumer", "topic", "partition"],
)
LAG_SECONDS = Gauge(
    "em_consumer_lag_seconds",
    "Age of the oldest record of a partition not yet processed (0 when caught up)",
    ["consumer", "topic", "partition"],
)


@dataclass
class _Partition:
    newest_ts_s: float | None = None  # Kafka timestamp of the newest processed record
    caught_up_at: float | None = None  # wall time the consumer was last seen caught up
    records: int = 0
    seconds: float = 0.0


class ConsumerLag:
    """Lag of one consumer's assigned partitions; :meth:`observe` after each poll or tick."""

    def __init__(self, consumer: str, clock: Callable[[], float] = time.time) -> None:
        self.consumer = consumer
        self.clock = clock
        self.partitions: dict[TopicPartition, _Partition] = {}

    def processed(self, tp: TopicPartition, timestamp_ms: int) -> None:
        """Note the Kafka timestamp of the newest record of ``tp`` that was processed."""
        part = self.partitions.setdefault(tp, _Partition())
        part.newest_ts_s = timestamp_ms / 1000

    def observe(self, tp: TopicPartition, highwater: int | None, position: int) -> float:
        """Update and return the lag in seconds of ``tp`` (``highwater`` None: not known yet)."""
        part = self.partitions.setdefault(tp, _Partition())
        now = self.clock()
        if highwater is None:
            return part.seconds
        part.records = max(highwater - position, 0)
        if part.records == 0:
            part.caught_up_at, part.seconds = now, 0.0
        else:
            known = [t for t in (part.newest_ts_s, part.caught_up_at) if t is not None]
            part.seconds = max(now - max(known), 0.0) if known else 0.0
        labels = (self.consumer, tp.topic, str(tp.partition))
        LAG_RECORDS.labels(*labels).set(part.records)
        LAG_SECONDS.labels(*labels).set(part.seconds)
        return part.seconds

    def keep(self, assigned: Iterable[TopicPartition]) -> None:
        """Forget partitions not in ``assigned`` (moved to another consumer) and their series."""
        keep = set(assigned)
        for tp in [tp for tp in self.partitions if tp not in keep]:
            del self.partitions[tp]
            for gauge in (LAG_RECORDS, LAG_SECONDS):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.consumer, tp.topic, str(tp.partition))

    def oldest_s(self, topic: str | None = None) -> float:
        """Return the largest lag in seconds over the partitions (of ``topic``), 0 if none."""
        return max(
            (p.seconds for tp, p in self.partitions.items() if topic in (None, tp.topic)),
            default=0.0,
        )

    def observe_consumer(self, consumer: AIOKafkaConsumer) -> None:
        """Observe every partition assigned to ``consumer`` whose position is known."""
        assigned = consumer.assignment()
        self.keep(assigned)
        for tp in assigned:
            position = local_position(consumer, tp)
            if position is not None:
                self.observe(tp, consumer.highwater(tp), position)


def local_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """Return the consumer's position on ``tp`` if it is known locally, else None.

    Unlike ``await consumer.position(tp)`` this never waits (for an offset reset or a
    rebalance); it reads the same assignment state as ``consumer.highwater``.
    """
    try:
        assignment = consumer._subscription.subscription.assignment
        state = assignment.state_value(tp)
        return state.position if state is not None and state.has_valid_position else None
    except (AttributeError, KeyError):
        return None
