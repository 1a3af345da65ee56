"""The worker's freshness metrics: lag, last commit per partition, devices heard from.

- ``em_consumer_lag_records`` / ``em_consumer_lag_seconds{consumer="worker"}`` per readings
  partition (:mod:`em_service.lag`), and ``em_oldest_unprocessed_reading_age_seconds``, their
  largest age on this worker.
- ``em_partition_last_commit_timestamp_seconds{partition}``: when the partition last committed a
  transaction (set to the take-over time first, so a partition that never commits shows).
- ``em_devices_enrolled`` and ``em_devices_heard_recently``: the enrolled devices (in anyone's
  conditions) whose readings partition this worker has owned for at least ``heard_window_s``,
  and how many of them it consumed a reading from within that window. Partitions owned for a
  shorter time (just started, just moved here) count in neither, so a restart or a rebalance
  does not look like tags going silent; ``sum`` both across workers for the silent share. A
  device's partition is the producers' default (murmur2 of the device id key, as Kafka's).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
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
DEVICES_ENROLLED = Gauge(
    "em_devices_enrolled",
    "Enrolled devices on the partitions this worker has owned for at least heard_window_s",
)
DEVICES_HEARD = Gauge(
    "em_devices_heard_recently",
    "Of em_devices_enrolled, those with a reading consumed in the last heard_window_s",
)
#: Counting heard devices walks every enrolled device: at most this often (or a quarter window).
HEARD_EVERY_S = 10.0


def partition_of(device_id: str, partitions: int) -> int:
    """Return the readings partition of ``device_id`` under the default (murmur2) partitioner."""
    return (murmur2(device_id.encode()) & 0x7FFFFFFF) % partitions


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
        self.owned_since: dict[int, float] = {}
        self._partition_of: dict[str, int] = {}
        self._partitions = 0
        self._heard_at = float("-inf")

    def assigned(self, partition: int) -> None:
        now = self.clock()
        self.heard.setdefault(partition, {})
        self.owned_since[partition] = now
        LAST_COMMIT.labels(str(partition)).set(now)

    def committed(self, partition: int) -> None:
        LAST_COMMIT.labels(str(partition)).set(self.clock())

    def dropped(self, partition: int) -> None:
        self.heard.pop(partition, None)
        self.owned_since.pop(partition, None)
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

    def count(self, enrolled: Iterable[str], partitions: int) -> tuple[int, int]:
        """Return (enrolled devices on warm partitions, how many of them were heard recently).

        A partition is warm once owned for ``heard_window_s``; ``partitions`` is the readings
        topic's partition count. Devices not heard within the window are forgotten.
        """
        now = self.clock()
        cutoff = now - self.heard_window_s
        for devices in self.heard.values():
            for key in [k for k, at in devices.items() if at < cutoff]:
                del devices[key]
        if partitions != self._partitions:
            self._partition_of, self._partitions = {}, partitions
        warm = {p for p, since in self.owned_since.items() if since <= cutoff}
        total = heard = 0
        for device in enrolled:
            p = self._partition_of.get(device)
            if p is None:
                p = self._partition_of[device] = partition_of(device, partitions)
            if p in warm:
                total += 1
                heard += device.encode() in self.heard.get(p, {})
        return total, heard

    def observe(
        self,
        consumer: AIOKafkaConsumer,
        positions: dict[int, int],
        enrolled: Callable[[], Iterable[str]],
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
        partitions = consumer.partitions_for_topic(self.topic)
        every = min(HEARD_EVERY_S, self.heard_window_s / 4)
        if partitions and now - self._heard_at >= every:
            self._heard_at = now
            total, heard = self.count(enrolled(), len(partitions))
            DEVICES_ENROLLED.set(total)
            DEVICES_HEARD.set(heard)
