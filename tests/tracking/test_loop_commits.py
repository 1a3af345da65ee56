"""The loop without a broker: its commit discipline (a failed delivery aborts the transaction;
after any failed commit nothing later is committed: its inputs would be skipped for good) and
the rule clock that judges open scenes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaError

from em_service.settings import Settings
from em_service.tracking.loop import TrackingLoop
from em_service.tracking.tracker import Output, PartitionWork


class Producer:
    """Records what a transactional producer was asked to do; deliveries fail if told to."""

    def __init__(self, fail_delivery: bool = False) -> None:
        self.fail_delivery = fail_delivery
        self.commits: list[tuple[list[bytes], dict]] = []
        self.aborts = 0

    async def begin_transaction(self) -> None:
        self.batch: list[bytes] = []
        self.offsets: dict = {}

    async def send(self, topic, value, key=None, partition=None) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        if self.fail_delivery:
            fut.set_exception(KafkaError("record too large"))
        else:
            fut.set_result(None)
        self.batch.append(value)
        return fut

    async def send_offsets_to_transaction(self, offsets, group_id) -> None:
        self.offsets = offsets

    async def abort_transaction(self) -> None:
        self.aborts += 1

    async def commit_transaction(self) -> None:
        self.commits.append((self.batch, self.offsets))


def _loop(producer: Producer) -> tuple[TrackingLoop, PartitionWork]:
    loop = TrackingLoop(Settings(topic_alerts="alerts"))
    work = loop.works[0] = PartitionWork(0)
    loop.producers[0] = producer  # type: ignore[assignment]
    return loop, work


def _pending(work: PartitionWork, offset: int) -> None:
    work.outbox.append(Output("alerts", b"off-1", f"alert@{offset}".encode()))
    work.next_offset = offset


def test_a_commit_sends_outputs_and_the_next_offset_in_one_transaction() -> None:
    async def run() -> Producer:
        producer = Producer()
        loop, work = _loop(producer)
        _pending(work, 10)
        await loop._commit()
        _pending(work, 20)
        await loop._commit()  # waits for the first, then starts the second
        await loop._settle()
        return producer

    producer = asyncio.run(run())
    assert [(batch, [o.offset for o in offs.values()]) for batch, offs in producer.commits] == [
        ([b"alert@10"], [10]),
        ([b"alert@20"], [20]),
    ]


def test_a_failed_delivery_aborts_and_nothing_later_is_committed() -> None:
    async def run() -> tuple[Producer, list[str]]:
        producer = Producer(fail_delivery=True)
        loop, work = _loop(producer)
        _pending(work, 10)
        await loop._commit()
        _pending(work, 20)
        errors = []
        with pytest.raises(KafkaError):
            await loop._commit()  # the first one's failure surfaces here
        producer.fail_delivery = False
        for step in (loop._commit(), loop._commit_or_drop("stopping")):
            try:
                await step
            except KafkaError as exc:
                errors.append(str(exc))
        return producer, errors

    producer, errors = asyncio.run(run())
    assert producer.aborts == 1 and producer.commits == []
    assert errors == ["KafkaError: record too large"]  # _commit refuses; _commit_or_drop skips


def test_open_scenes_are_judged_by_the_rule_clock() -> None:
    """Production: the (shifted) wall clock; a replay: the newest event time of its partitions."""
    t = datetime(2026, 11, 16, 10, tzinfo=UTC)
    replay = TrackingLoop(Settings(rule_clock="event"))
    assert replay.rule_now() is None  # nothing read yet: no scene is closed
    replay.works = {0: PartitionWork(0, watermark=t), 1: PartitionWork(1), 2: PartitionWork(2)}
    replay.works[2].watermark = t - timedelta(hours=1)
    assert replay.rule_now() == t
    year = 365 * 86400.0
    production = TrackingLoop(Settings(wall_clock_offset_s=5 * year))
    production.works = replay.works
    ahead = (production.rule_now() - datetime.now(UTC)).total_seconds()
    assert abs(ahead - 5 * year) < 60
