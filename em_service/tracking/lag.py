"""The worker's freshness metrics: lag, last commit per partition, devices heard from.

- ``em_consumer_lag_records`` / ``em_consumer_lag_seconds{consumer="worker"}`` per readings
  partition (:mod:`em_service.lag`), and ``em_oldest_unprocessed_reading_age_seconds``, their
  largest age on this worker.
- ``em_partition_last_commit_timestamp_seconds{partition}``: when the partition last committed a
  transaction (set to the take-over time first, so a partition that never commits shows).
- ``em_devices_enrolled``: devices in anyone's conditions (the whole registry, the same on every
  worker: take ``max`` across workers); ``em_devices_heard_recently``: enrolled devices of this
  worker's partitions with a reading consumed in the last ``heard_window_s`` (``sum`` across
  workers). Together they give the share of enrolled tags gone silent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

from em_service.lag import ConsumerLag, local_position

LAST_COMMIT = Gauge(
    "em_partition_last_commit_timestamp_seconds",
    "Unix time of the last transaction committed for a readings partition (or its take-over)",
    ["partition"],
)
OLDEST_READING = Gauge(
    "em_oldest_unprocessed_reading_age_seconds",
    "Age of the oldest reading not yet processed on this worker's partitions (0: caught up)",
)
DEVICES_ENROLLED = Gauge("em_devices_enrolled", "Devices in anyone's conditions (registry)")
DEVICES_HEARD = Gauge(
    "em_devices_heard_recently",
    "Enrolled devices of this worker's partitions heard from in the last heard_window_s",
)
#: Counting heard devices walks every device: at most this often.
HEARD_EVERY_S = 10.0


class WorkerFreshness:
    """Keeps the worker's freshness gauges; the loop calls it as partitions move and commit."""

    def __init__(
        self, topic: str, heard_window_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.topic = topic
        self.heard_window_s = heard_window_s
        self.clock = clock
        self.lag = ConsumerLag("worker", clock)
        self.heard: dict[int, dict[bytes, float]] = {}
        self._heard_at = float("-inf")

    def assigned(self, partition: int) -> None:
        self.heard.setdefault(partition, {})
        LAST_COMMIT.labels(str(partition)).set(self.clock())

    def committed(self, partition: int) -> None:
        LAST_COMMIT.labels(str(partition)).set(self.clock())

    def dropped(self, partition: int) -> None:
        self.heard.pop(partition, None)
        self.lag.keep(tp for tp in self.lag.partitions if tp.partition != partition)
        with contextlib.suppress(KeyError):
            LAST_COMMIT.remove(str(partition))

    def consumed(self, records: Iterable[tuple[Any, Any]]) -> None:
        """Note ``(work, record)`` pairs just processed: who was heard, the newest timestamps."""
        now = self.clock()
        newest: dict[int, int] = {}
        for work, rec in records:
            self.heard.setdefault(work.partition, {})[rec.key] = now
            newest[work.partition] = rec.timestamp
        for partition, ts_ms in newest.items():
            self.lag.processed(TopicPartition(self.topic, partition), ts_ms)

    def count_heard(self, enrolled: Callable[[str], bool]) -> int:
        """Drop devices not heard within the window; return how many enrolled ones remain."""
        cutoff = self.clock() - self.heard_window_s
        count = 0
        for devices in self.heard.values():
            for key in [k for k, at in devices.items() if at < cutoff]:
                del devices[key]
            count += sum(
                1 for k in devices if k is not None and enrolled(k.decode(errors="replace"))
            )
        return count

    def observe(
        self,
        consumer: AIOKafkaConsumer,
        positions: dict[int, int],
        enrolled: Callable[[str], bool],
        n_enrolled: int,
    ) -> None:
        """Refresh the lag gauges (and, every :data:`HEARD_EVERY_S`, the device counts).

        ``positions`` are the next offsets to process of the owned partitions; the consumer's
        own position is taken when it is further (it skips transaction markers).
        """
        assigned = consumer.assignment()
        for partition, position in positions.items():
            tp = TopicPartition(self.topic, partition)
            if tp in assigned:  # else a rebalance is under way
                position = max(position, local_position(consumer, tp) or 0)
                self.lag.observe(tp, consumer.highwater(tp), position)
        OLDEST_READING.set(self.lag.oldest_s(self.topic))
        now = self.clock()
        if now - self._heard_at >= HEARD_EVERY_S:
            self._heard_at = now
            DEVICES_ENROLLED.set(n_enrolled)
            DEVICES_HEARD.set(self.count_heard(enrolled))
