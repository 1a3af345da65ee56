"""``em-service archiver``: archive readings and materialise alerts and conditions in the database.

A plain aiokafka consumer in its own group (``<app_id>-archiver``), apart from the tracking worker
so it never slows the alerting path. Each poll becomes one write transaction; offsets are
committed only after the database commit. A crash in between re-delivers the batch, and the
idempotent inserts make that harmless: at-least-once delivery, effectively-once storage.
A failed write is retried (offsets rewound), never skipped — unless the database is fine and a
record is at fault: the batch is then written record by record and a record that fails on its
own is dead-lettered (``processing_error``, :mod:`em_service.failures`) before the offsets are
committed. Fixes that cannot be projected are never archived. Retention runs periodically, and
so does escalation (:mod:`em_service.store.escalation`): the archiver, not the API, escalates
unacknowledged critical alerts, because it runs headless beside the alert store whether or not
anyone serves or calls the API; several archivers (or restarts) still raise each level once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from em_service import failures, kafka_io
from em_service.clock import rule_now, wall_now
from em_service.contracts import DeadLetter
from em_service.health import Readiness
from em_service.lag import ConsumerLag
from em_service.settings import Settings
from em_service.store import Store, escalation, ingest, migrate, open_store, retention
from em_service.store import metrics as m

log = logging.getLogger(__name__)
_RETRY_BACKOFF_MAX_S = 30.0


def group_id(settings: Settings) -> str:
    """Return the archiver's consumer group."""
    return f"{settings.app_id}-archiver"


class Archiver:
    """Consume readings, alerts and conditions; write them in batches; run retention."""

    def __init__(self, settings: Settings, store: Store, ready: Readiness | None = None) -> None:
        self.settings = settings
        self.store = store
        #: Newest event time archived per readings partition (the rule clock of a replay).
        self.watermarks: dict[int, datetime] = {}
        self.ready = ready or readiness()
        self.kinds = {
            settings.topic_readings: "readings",
            settings.topic_alerts: "alerts",
            settings.topic_conditions: "conditions",
        }
        self._producer: AIOKafkaProducer | None = None  # dead letters, started on first need
        self.lag = ConsumerLag("archiver")

    async def _dlq(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = kafka_io.producer(
                self.settings, client_id=f"{self.settings.app_id}-archiver"
            )
            await producer.start()
            self._producer = producer
        return self._producer

    def decode(
        self,
        records: dict[TopicPartition, list[ConsumerRecord]],
        letters: list[DeadLetter] | None = None,
    ) -> ingest.Batch:
        """Return the decoded batch of one poll (records of each partition in offset order).

        A record whose decoding raises (not an invalid record: those are counted and skipped)
        is left out and its dead letter appended to ``letters``.
        """
        batch, now = ingest.Batch(), wall_now(self.settings)
        for msgs in records.values():
            for msg in msgs:
                try:
                    self._add(batch, msg, now)
                except Exception as exc:
                    self._failed(msg, exc, letters)
        return batch

    def _add(self, batch: ingest.Batch, msg: ConsumerRecord, now: datetime) -> None:
        kind = self.kinds[msg.topic]
        if kind == "readings":
            mark = self.watermarks.get(msg.partition)
            reading = batch.add_reading(msg.value, self.settings, now, watermark=mark)
            if reading is not None and (mark is None or reading.ts > mark):
                self.watermarks[msg.partition] = reading.ts
        elif kind == "alerts":
            batch.add_alert(msg.value)
        else:
            published = datetime.fromtimestamp(msg.timestamp / 1000, tz=UTC)
            batch.add_conditions(
                msg.key,
                msg.value,
                published,
                crs=self.settings.projected_crs,
                position=(msg.partition, msg.offset),
            )

    def _failed(
        self, msg: ConsumerRecord, exc: Exception, letters: list[DeadLetter] | None
    ) -> None:
        if self.settings.fail_fast or letters is None or failures.is_transient(exc):
            raise exc
        where = f"{msg.topic}/{msg.partition}@{msg.offset}"
        letters.append(
            failures.letter_for(msg, failures.record_failed("archiver", where, exc), self.settings)
        )

    def write_one_by_one(
        self, records: dict[TopicPartition, list[ConsumerRecord]], letters: list[DeadLetter]
    ) -> Counter:
        """Write each record in its own transaction (after a batch failed); dead-letter those
        that fail on their own (records in ``letters`` already are skipped). An infrastructure
        error still fails it all (retried)."""
        done = {(d.source_topic, d.source_partition, d.source_offset) for d in letters}
        outcomes: Counter = Counter()
        now = wall_now(self.settings)
        conditions_first = sorted(
            records.items(), key=lambda kv: kv[0].topic != self.settings.topic_conditions
        )  # as in one batch: an offender exists before its alerts
        for _tp, msgs in conditions_first:
            for msg in msgs:
                if (msg.topic, msg.partition, msg.offset) in done:
                    continue
                try:
                    one = ingest.Batch()
                    self._add(one, msg, now)
                    outcomes += self.write(one) if not one.empty else one.outcomes
                except Exception as exc:
                    self._failed(msg, exc, letters)
        return outcomes

    def write(self, batch: ingest.Batch) -> Counter:
        """Write one batch in one transaction (blocking: call it in a thread)."""
        m.DB_WRITE_BATCH_ROWS.labels("fixes").observe(len(batch.gps))
        m.DB_WRITE_BATCH_ROWS.labels("alcohol").observe(len(batch.alcohol))
        m.DB_WRITE_BATCH_ROWS.labels("alerts").observe(len(batch.alerts))
        start = time.perf_counter()
        with self.store.write() as session:
            outcomes = ingest.write(session, batch, crs=self.settings.projected_crs)
        m.DB_WRITE_SECONDS.observe(time.perf_counter() - start)
        return outcomes

    async def _handle(
        self, consumer: AIOKafkaConsumer, records: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        letters: list[DeadLetter] = []
        batch = self.decode(records, letters)
        try:
            outcomes = (
                await asyncio.to_thread(self.write, batch) if not batch.empty else batch.outcomes
            )
        except Exception as exc:
            if self.settings.fail_fast or failures.is_transient(exc):
                raise
            log.warning("archiver batch failed (%r); writing its records one by one", exc)
            outcomes = await asyncio.to_thread(self.write_one_by_one, records, letters)
        if letters:
            await failures.send_letters(await self._dlq(), self.settings.topic_dlq, letters)
        for (topic, outcome), n in outcomes.items():
            m.ARCHIVER_RECORDS.labels(topic, outcome).inc(n)
        m.ORPHAN_ENDED.inc(outcomes.get(("alerts", "orphan_ended"), 0))
        unprojectable = outcomes.get(("readings", "unprojectable"), 0)
        if unprojectable:  # the worker dead-letters them; here they are only left out
            failures.RECORDS_FAILED.labels("archiver", "unprojectable").inc(unprojectable)
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in records.items() if msgs}
        for tp, msgs in records.items():
            if msgs:
                self.lag.processed(tp, msgs[-1].timestamp)
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Partitions moved during the batch: whoever gets them re-reads it; inserts are
            # idempotent, so nothing is stored twice.
            log.warning("offset commit failed (batch will be re-delivered): %s", exc)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        m.ARCHIVER_ASSIGNED.set(len(assigned))
        lag: Counter[str] = Counter()
        for tp in assigned:
            high = consumer.highwater(tp)
            if high is not None:
                lag[tp.topic] += max(high - await consumer.position(tp), 0)
        for topic, kind in self.kinds.items():
            m.ARCHIVER_LAG.labels(kind).set(lag.get(topic, 0))
        self.lag.observe_consumer(consumer)

    async def consume(self, stop: asyncio.Event) -> None:
        """Run the consume → write → commit loop until ``stop`` is set."""
        s = self.settings
        consumer = kafka_io.consumer(  # committed only: no alert of an aborted transaction
            *self.kinds,
            bootstrap=s.kafka_bootstrap,
            group_id=group_id(s),
            client_id=f"{s.app_id}-archiver",
            auto_offset_reset="earliest",
            max_poll_records=s.archiver_batch_max_records,
            settings=s,
        )
        await consumer.start()
        m.ARCHIVER_UP.set(1)
        self.ready.set("broker")
        backoff = 0.5
        try:
            while not stop.is_set():
                records = await consumer.getmany(
                    timeout_ms=int(s.archiver_poll_timeout_s * 1000),
                    max_records=s.archiver_batch_max_records,
                )
                if records:
                    try:
                        await self._handle(consumer, records)
                        backoff = 0.5
                        self.ready.set("database")
                    except Exception:
                        m.ARCHIVER_WRITE_ERRORS.inc()
                        self.ready.set("database", "write failing")
                        log.exception("archiver write failed; retrying in %.1f s", backoff)
                        kafka_io.rewind(consumer, records)
                        await _wait(stop, backoff)
                        backoff = min(backoff * 2, _RETRY_BACKOFF_MAX_S)
                await self._update_lag(consumer)
        finally:
            m.ARCHIVER_UP.set(0)
            if self._producer is not None:
                await self._producer.stop()
            self.ready.set("broker", "stopping")
            await consumer.stop()

    def run_retention(self) -> retention.RetentionReport | None:
        """Apply the retention table (``store/retention.py``) against the rule clock (blocking):
        the wall clock, or in a replay the newest event time archived (None: nothing yet, no
        run); console sessions by the wall clock. Creates the coming month partitions first
        (PostgreSQL)."""
        mark = max(self.watermarks.values(), default=None)
        wall = wall_now(self.settings)
        now = rule_now(self.settings, wall, mark)
        if now is None:
            return None
        report = retention.purge_trail(
            self.store,
            **retention.periods(self.settings),
            now=now,
            wall=wall,
            drop_folder=_drop_folder(),
        )
        for table, n in report.counts.items():
            m.RETENTION_DELETED.labels(table).inc(n)
        m.RETENTION_LAST_RUN.set_to_current_time()
        log.info(
            "retention: %s before %s (scenes before %s); %d partitions dropped",
            ", ".join(f"{n} {table}" for table, n in report.counts.items()),
            report.cutoff.isoformat(),
            report.scene_cutoff.isoformat(),
            len(report.partitions_dropped),
        )
        return report

    def run_escalation(self) -> list[escalation.Escalated]:
        """Raise the escalations due by the wall clock (blocking); count them."""
        raised = escalation.run(
            self.store, now=wall_now(self.settings), after_s=self.settings.escalate_after_s
        )
        for e in raised:
            m.ALERTS_ESCALATED.labels(str(e.level)).inc()
            log.warning("alert %s escalated to level %d (unacknowledged)", e.alert_id, e.level)
        m.ESCALATION_LAST_RUN.set_to_current_time()
        return raised

    async def escalate(self, stop: asyncio.Event) -> None:
        """Run escalation every ``escalation_interval_s`` until ``stop``."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_escalation)
            except Exception:
                log.exception("escalation run failed; will try again next interval")
            await _wait(stop, self.settings.escalation_interval_s)

    async def retain(self, stop: asyncio.Event) -> None:
        """Run retention now and then every ``archiver_retention_interval_s`` until ``stop``."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_retention)
            except Exception:
                log.exception("retention run failed; will try again next interval")
            await _wait(stop, self.settings.archiver_retention_interval_s)


def _drop_folder() -> Path | None:
    from em_service.scenes.batches.config import get_batch_settings

    return get_batch_settings().drop_folder


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def topics(settings: Settings) -> tuple[str, ...]:
    """Return the topics the archiver (with its scene consumer) reads or writes."""
    s = settings
    return (s.topic_readings, s.topic_alerts, s.topic_conditions, s.topic_scenes, s.topic_dlq)


def readiness() -> Readiness:
    """The archiver's ``/readyz`` checks: the database (migrated, writes succeed), the broker."""
    return Readiness("database", "broker")


async def run_async(
    settings: Settings, stop: asyncio.Event | None = None, ready: Readiness | None = None
) -> None:
    """Prepare the database and topics, then consume and retain until ``stop`` (or a signal)."""
    from em_service.devstack import ensure_topics_async

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = open_store(settings)
    try:
        if settings.db_auto_upgrade:
            await asyncio.to_thread(migrate.upgrade, store)
        elif not migrate.is_current(store):
            raise SystemExit("database schema is not current: run `em-service db upgrade`")
        ready = ready or readiness()
        ready.set("database")
        created = await ensure_topics_async(settings, only=topics(settings))
        if created:
            log.info("created topics: %s", ", ".join(created))
        archiver = Archiver(settings, store, ready)
        retain = asyncio.create_task(archiver.retain(stop))
        escalate = asyncio.create_task(archiver.escalate(stop))
        scenes = asyncio.create_task(_scenes(settings, store, stop))
        try:
            await archiver.consume(stop)
        finally:
            stop.set()
            await retain
            await escalate
            await scenes
    finally:
        store.dispose()


# --- Scenes (em_service/scenes): retrospective matching of scenes on the scenes topic --------


async def _scenes(settings: Settings, store: Store, stop: asyncio.Event) -> None:
    """Run the scene consumer beside the archive; if it fails, stop the archiver (no silent loss)."""
    from em_service.scenes.consumer import SceneConsumer

    try:
        await SceneConsumer(settings, store).run(stop)
    except Exception:
        log.exception("scene consumer failed; stopping the archiver")
        stop.set()
        raise


# ---------------------------------------------------------------------------------------------


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Entry point of ``em-service archiver``: serve /metrics and /readyz, archive until SIGTERM."""
    from em_service import health, logs

    logs.configure(settings, loglevel)
    ready = readiness()
    health.serve(settings.archiver_metrics_port, settings.archiver_metrics_host, ready)
    asyncio.run(run_async(settings, ready=ready))
