"""The worker's Kafka loop: consume readings, apply the tracker, commit exactly once per partition.

A plain aiokafka consume-transform-produce loop (the README says why it replaced Faust):

- One consumer in group ``app_id`` reads the readings topic (``read_committed``), in batches of
  up to ``batch_max`` records across the partitions it owns.
- Each owned partition has its own transactional producer, ``transactional.id`` =
  ``<app_id>-tracking-<partition>``. Starting it fences any earlier owner of that partition (a
  zombie after a crash or a rebalance) and aborts its open transaction, so only then does the
  worker restore the partition's device states from the compacted changelog topic and seek to
  the partition's committed offset.
- Every ``commit_interval_s`` (or sooner when a lot is pending) each partition with work commits
  one transaction: its alerts and dead letters, the changed device states (changelog), and the
  next input offset (``send_offsets_to_transaction``). A crash anywhere before the commit loses
  nothing and duplicates nothing: the records are read again and produce the same outputs.
- Timer work (silence checks, reorder flushes, curfew window ends) runs in the same loop every
  ``tick_interval_s`` and commits with the partition's next transaction. No transaction is held
  open while the loop waits for records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from em_service import kafka_io, metrics
from em_service.clock import rule_now, wall_now
from em_service.conditions.registry import ConditionsRegistry
from em_service.scenes.config import get_scene_settings
from em_service.scenes.feed import follow_scenes
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.feed import follow_conditions
from em_service.tracking.lag import WorkerFreshness
from em_service.tracking.tracker import PartitionWork, Pending, Record, Tracker
from em_service.tracking.victims import dead_letter_victims, follow_victims

log = logging.getLogger(__name__)

#: Commit before the commit interval is up once this many outputs and states are pending.
_MAX_PENDING = 20_000
#: A commit that takes longer than this has failed (broker gone): the worker stops.
_COMMIT_TIMEOUT_S = 60.0
#: How often lag and freshness gauges are refreshed.
_OBSERVE_INTERVAL_S = 1.0


class TrackingLoop:
    """The tracking worker (see the module docstring); :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ConditionsRegistry(settings.projected_crs)
        self.live = LiveMatcher(
            get_scene_settings(), crs=settings.projected_crs, late_after_s=settings.late_after_s
        )
        self.tracker = Tracker(self.registry, settings, self.live)
        self.works: dict[int, PartitionWork] = {}
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.lock = asyncio.Lock()  # one batch, tick, commit or rebalance at a time
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._gauges: dict[int, Counter[str]] = {}
        self._inflight: asyncio.Task | None = None  # the commit running while the loop goes on
        self._restoring: dict[int, asyncio.Task] = {}  # partition -> its state restore
        self._feeds: list[asyncio.Task] = []
        self._failed: BaseException | None = None  # once set, nothing more is committed
        self.fresh = WorkerFreshness(settings.topic_readings, settings.heard_window_s)
        self._conditions_ready, self._scenes_ready = asyncio.Event(), asyncio.Event()
        self._victims_ready = asyncio.Event()
        self._consuming = self._assigned = False  # for readiness()

    def readiness(self) -> dict[str, str]:
        """What the worker waits for, one word per check (``/readyz``; any thread may ask)."""
        restoring = sum(1 for w in list(self.works.values()) if not w.ready)
        stopping = self._stopping.is_set()
        return {
            "broker": "stopping" if stopping else "ok" if self._consuming else "connecting",
            "group": "ok" if self._assigned else "joining",
            "conditions": "ok" if self._conditions_ready.is_set() else "loading",
            "scenes": "ok" if self._scenes_ready.is_set() else "loading",
            "victims": "ok" if self._victims_ready.is_set() else "loading",
            "state": f"restoring {restoring} partitions" if restoring else "ok",
        }

    def stop(self) -> None:
        """Ask :meth:`run` to commit what is pending and return."""
        self._stopping.set()

    def _fail(self, exc: BaseException) -> None:
        """Stop without committing anything more; :meth:`run` raises ``exc``."""
        if self._failed is None:
            self._failed = exc
        self._stopping.set()

    def _check(self) -> None:
        """Raise if the worker failed or a feed (conditions, scenes) stopped."""
        if self._failed is not None:
            raise self._failed
        for task in self._feeds:
            if task.done():
                exc = None if task.cancelled() else task.exception()
                raise RuntimeError(f"a feed stopped: {task.get_name()}") from exc

    def rule_now(self) -> datetime | None:
        """The rule clock that judges which scenes are open: the wall clock, or in a replay the
        newest event time of the partitions owned (None before the first reading)."""
        marks = [w.watermark for w in self.works.values() if w.watermark is not None]
        return rule_now(self.settings, wall_now(self.settings), max(marks, default=None))

    async def run(self) -> None:
        """Load conditions, open scenes and victims' positions, then consume until stopped."""
        s = self.settings
        conditions_ready, scenes_ready = self._conditions_ready, self._scenes_ready
        self._feeds = [
            asyncio.create_task(
                follow_conditions(
                    self.registry, s.kafka_bootstrap, s.topic_conditions, conditions_ready
                ),
                name="conditions feed",
            ),
            asyncio.create_task(
                follow_scenes(
                    self.live,
                    s.kafka_bootstrap,
                    s.topic_scenes,
                    scenes_ready,
                    clock=self.rule_now,
                    fail_fast=s.fail_fast,
                ),
                name="scenes feed",
            ),
            asyncio.create_task(
                follow_victims(
                    self.tracker.engine.positions, s, self._victims_ready, clock=self.rule_now
                ),
                name="victims feed",
            ),
            asyncio.create_task(dead_letter_victims(s), name="victim dead letters"),
        ]
        try:
            await self._until_ready(
                conditions_ready.wait(), scenes_ready.wait(), self._victims_ready.wait()
            )
            if not self._stopping.is_set():
                await self._consume()
            self._check()
        finally:
            for task in self._feeds:
                task.cancel()
            await asyncio.gather(*self._feeds, return_exceptions=True)

    async def _until_ready(self, *waits) -> None:
        """Wait for ``waits``, a stop request, or a feed that ends (an error) first."""
        stopping = asyncio.create_task(self._stopping.wait())
        ready = asyncio.gather(*waits)
        await asyncio.wait([stopping, ready, *self._feeds], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not ready.done():
            ready.cancel()
        self._check()

    async def _consume(self) -> None:
        s = self.settings
        self.consumer = consumer = kafka_io.consumer(
            bootstrap=s.kafka_bootstrap,
            group_id=s.app_id,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.session_timeout_s * 200),
            max_partition_fetch_bytes=max(4 << 20, s.kafka_max_message_bytes),
            settings=s,
        )
        await consumer.start()
        consumer.subscribe([s.topic_readings], listener=_Rebalance(self))
        metrics.WORKER_UP.set(1)
        self._consuming = True
        log.info("tracking worker consuming %s as group %s", s.topic_readings, s.app_id)
        next_tick = time.monotonic() + s.tick_interval_s
        next_commit = time.monotonic() + s.commit_interval_s
        next_observe = time.monotonic()
        try:
            while not self._stopping.is_set():
                self._check()
                now_m = time.monotonic()
                wait_s = max(0.0, min(next_tick, next_commit) - now_m)
                batch = await consumer.getmany(
                    timeout_ms=int(wait_s * 1000), max_records=s.batch_max
                )
                async with self.lock:
                    records = self._fresh(batch)
                    if records:
                        self.tracker.process(records, wall_now(s))
                        self.fresh.consumed(records)
                    now_m = time.monotonic()
                    if now_m >= next_tick:
                        self._tick()
                        next_tick = now_m + s.tick_interval_s
                    if now_m >= next_commit or self._pending() >= _MAX_PENDING:
                        await self._commit()
                        next_commit = time.monotonic() + s.commit_interval_s
                    if now_m >= next_observe:
                        self._observe()
                        next_observe = now_m + _OBSERVE_INTERVAL_S
        except BaseException as exc:
            self._fail(exc)  # what is half done must not be committed
            raise
        finally:
            metrics.WORKER_UP.set(0)
            self._consuming = False
            async with self.lock:
                await self._commit_or_drop("stopping")
                for partition in list(self.producers):
                    await self._drop(partition)
            await consumer.stop()

    def _fresh(self, batch: dict[TopicPartition, list]) -> list[tuple[PartitionWork, Record]]:
        """Return the records of ``batch`` this worker has not processed yet, in order.

        A batch fetched while a rebalance moved positions (the rebalance listener seeks every
        assigned partition to its committed offset) may hold records of a partition not owned
        any more, or records before or again after a seek: only records at or after the
        partition's next offset are taken, and the consumer is put back on that offset.
        """
        assert self.consumer is not None
        records: list[tuple[PartitionWork, Record]] = []
        for tp, recs in batch.items():
            work = self.works.get(tp.partition)
            if work is None:
                continue
            if not work.ready:  # paused while restoring: nothing should come; read it again
                if recs:
                    self.consumer.seek(tp, work.position)
                continue
            fresh = [rec for rec in recs if rec.offset >= work.position]
            if len(fresh) < len(recs):
                log.info("partition %d: %d records read twice skipped", tp.partition, len(recs))
            records += [(work, rec) for rec in fresh]
            if fresh:
                work.position = fresh[-1].offset + 1
            else:
                self.consumer.seek(tp, work.position)
        return records

    def _observe(self) -> None:
        assert self.consumer is not None
        positions = {p: w.position for p, w in self.works.items()}
        self.fresh.observe(self.consumer, positions, self.registry.devices)

    def _pending(self) -> int:
        return sum(len(w.outbox) + len(w.dirty) for w in self.works.values())

    def _tick(self) -> None:
        wall = wall_now(self.settings)
        for partition, work in self.works.items():
            if work.ready:
                self._gauges[partition] = self.tracker.tick(work, wall)
        metrics.TICKS.inc()
        self._publish_gauges()

    def _publish_gauges(self) -> None:
        total: Counter[str] = Counter()
        for counts in self._gauges.values():
            total.update(counts)
        metrics.DEVICES_SILENT.set(total.pop("silent", 0))
        for kind in ("exclusion", "inclusion", "curfew"):
            metrics.OPEN_EPISODES.labels(kind).set(total.get(kind, 0))

    async def _commit(self) -> None:
        """Start committing every partition's pending work (one transaction each, concurrently).

        The commit runs while the loop goes on processing; the previous commit is awaited
        first (and its failure raised), so transactions of a partition never overlap.
        """
        await self._settle()
        if self._failed is not None:
            raise self._failed
        taken = [p for w in self.works.values() if (p := w.take()) is not None]
        if taken:
            self._inflight = asyncio.create_task(self._commit_all(taken))

    async def _settle(self) -> None:
        """Wait for the commit in flight, if any; raise its error."""
        task, self._inflight = self._inflight, None
        if task is not None:
            try:
                await task
            except BaseException as exc:
                self._fail(exc)  # later work must not be committed over this gap
                raise

    async def _commit_all(self, taken: list[Pending]) -> None:
        began = time.perf_counter()
        commits = asyncio.gather(*(self._commit_one(p) for p in taken))
        try:
            await asyncio.wait_for(commits, _COMMIT_TIMEOUT_S)
        except BaseException:
            commits.cancel()
            raise
        metrics.TRANSACTION_COMMIT.observe(time.perf_counter() - began)

    async def _commit_or_drop(self, why: str) -> None:
        """Commit what is pending and wait; if that fails (fenced, broker gone), leave it.

        Nothing is lost: the inputs of uncommitted work were not committed either, so whoever
        owns the partitions next reads them again.
        """
        if self._failed is not None:
            log.warning("%s after a failure: nothing more is committed; it will be redone", why)
            return
        try:
            await self._commit()
            await self._settle()
        except Exception as exc:  # any failure means the same: not committed
            log.warning("%s: pending work not committed (%s); it will be redone", why, exc)

    async def _commit_one(self, taken: Pending) -> None:
        s = self.settings
        producer = self.producers[taken.partition]
        await producer.begin_transaction()
        try:
            sent = [await producer.send(o.topic, o.value, key=o.key) for o in taken.outbox]
            changelog = s.state_changelog_topic()
            for key, value in taken.changelog:
                sent.append(
                    await producer.send(changelog, value, key=key, partition=taken.partition)
                )
            if taken.next_offset is not None:
                tp = TopicPartition(s.topic_readings, taken.partition)
                await producer.send_offsets_to_transaction(
                    {tp: OffsetAndMetadata(taken.next_offset, "")}, s.app_id
                )
            # aiokafka would commit a transaction in which a batch failed: check every delivery.
            await asyncio.gather(*sent)
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            raise
        await producer.commit_transaction()
        self.fresh.committed(taken.partition)

    async def _assign(self, partitions: list[int]) -> None:
        """Take over ``partitions`` (concurrently): fence earlier owners, seek, start restores."""
        results = await asyncio.gather(
            *(self._take_over(p) for p in partitions if p not in self.works),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _take_over(self, partition: int) -> None:
        """Fence the previous owner, seek to the committed offset, restore in the background.

        The restore runs outside the rebalance callback (the consumer sends no heartbeats while
        a callback runs): the partition stays paused until its device states are loaded.
        """
        s = self.settings
        assert self.consumer is not None
        producer = kafka_io.producer(
            s,
            transactional_id=f"{s.app_id}-tracking-{partition}",
            linger_ms=2,
            max_batch_size=min(1 << 20, s.kafka_max_message_bytes),
        )
        await producer.start()  # InitProducerId: fences the previous owner, aborts its txn
        self.producers[partition] = producer
        self.fresh.assigned(partition)
        tp = TopicPartition(s.topic_readings, partition)
        committed = await self.consumer.committed(tp)
        if committed is None:
            committed = (await self.consumer.beginning_offsets([tp]))[tp]
        work = self.works[partition] = PartitionWork(partition, position=committed, ready=False)
        self.consumer.seek(tp, committed)
        self.consumer.pause(tp)
        self._restoring[partition] = asyncio.create_task(self._restore_then_resume(work, tp))

    async def _restore_then_resume(self, work: PartitionWork, tp: TopicPartition) -> None:
        began = time.perf_counter()
        try:
            restored = await self._restore(work.partition)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("partition %d: restoring device states failed", work.partition)
            self._fail(exc)
            return
        async with self.lock:
            if self.works.get(work.partition) is not work:
                return  # revoked meanwhile
            work.restored, work.ready = restored, True
            self._restoring.pop(work.partition, None)
            assert self.consumer is not None
            self.consumer.resume(tp)
        log.info(
            "partition %d: %d device states restored in %.2f s, resuming at offset %d",
            work.partition,
            len(restored),
            time.perf_counter() - began,
            work.position,
        )

    async def _restore(self, partition: int) -> dict[bytes, bytes]:
        """Read the committed device states of ``partition`` from the changelog topic."""
        s = self.settings
        tp = TopicPartition(s.state_changelog_topic(), partition)
        consumer = kafka_io.consumer(
            bootstrap=s.kafka_bootstrap, max_partition_fetch_bytes=8 << 20, settings=s
        )
        await consumer.start()
        states: dict[bytes, bytes] = {}
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for rec in batch.get(tp, []):
                    if rec.key is None:
                        continue
                    if rec.value is None:
                        states.pop(rec.key, None)
                    else:
                        states[rec.key] = rec.value
        finally:
            await consumer.stop()
        return states

    async def _revoke(self, partitions: list[int]) -> None:
        """Hand ``partitions`` back: commit their pending work, then forget them."""
        await self._commit_or_drop("partitions revoked")
        for partition in partitions:
            await self._drop(partition)
        self._publish_gauges()

    async def _drop(self, partition: int) -> None:
        restore = self._restoring.pop(partition, None)
        if restore is not None:
            restore.cancel()
        self.works.pop(partition, None)
        self._gauges.pop(partition, None)
        self.fresh.dropped(partition)
        producer = self.producers.pop(partition, None)
        if producer is not None:
            await producer.stop()


class _Rebalance(ConsumerRebalanceListener):
    """Runs the loop's revoke and assign steps between batches (under its lock)."""

    def __init__(self, loop: TrackingLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.loop.lock:
            await self._guarded(self.loop._revoke(sorted(tp.partition for tp in revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.loop.lock:
            await self._guarded(self.loop._assign(sorted(tp.partition for tp in assigned)))
            self.loop._assigned = True

    async def _guarded(self, step) -> None:
        # aiokafka only logs a callback's error: the worker would keep partitions it does
        # not process. Stop instead (a restart takes them over cleanly).
        try:
            await step
        except Exception as exc:
            log.exception("rebalance step failed; stopping")
            self.loop._fail(exc)
