"""The tracking work of a batch of readings, without Kafka: records in, outputs and states out.

:class:`Tracker` turns raw records of the readings topic into alerts, dead letters and device
states; :class:`PartitionWork` holds what one readings partition owns between two Kafka
transactions: the device states (a local copy of its changelog partition), the states changed
since the last commit, the outputs not yet sent and the next input offset to commit. The Kafka
loop (:mod:`em_service.tracking.loop`) sends all of that in one transaction per partition.

A batch may mix records of several partitions: the zone verdicts of all its GPS fixes are
evaluated at once (vectorised), then every record is applied in order to its device's state.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from em_service import failures, metrics
from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, DeadLetter, GpsReading, Reading
from em_service.contracts.codec import Rejected, dead_letter_key, encode
from em_service.contracts.readings import reading_type
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from em_service.tracking.intake import Projected, Source, project_fixes, triage
from geofences import ZoneVerdict
from geofences.projection import get_projector

log = logging.getLogger(__name__)


class Record(Protocol):
    """The fields of a consumed Kafka record that the tracker reads (aiokafka ConsumerRecord)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Output:
    """A message to send in the partition's next transaction."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Pending:
    """One partition's work for one transaction: outputs, changed states, next input offset."""

    partition: int
    outbox: list[Output]
    changelog: list[tuple[bytes, bytes]]
    next_offset: int | None


@dataclass
class PartitionWork:
    """One readings partition's device states and uncommitted work.

    ``restored`` holds changelog values not decoded yet (a device's state is decoded when its
    next reading or tick needs it); ``states`` the decoded ones; ``saved`` the serialised form
    of decoded states not changed since they were decoded or serialised for the changelog (so
    the state before a record, kept in case it fails, is usually had without encoding it).
    """

    partition: int
    restored: dict[bytes, bytes] = field(default_factory=dict)
    states: dict[bytes, DeviceState] = field(default_factory=dict)
    saved: dict[bytes, bytes] = field(default_factory=dict)
    dirty: set[bytes] = field(default_factory=set)
    outbox: list[Output] = field(default_factory=list)
    next_offset: int | None = None  # input offset to commit (set by processing, cleared by commit)
    position: int = 0  # next input offset to process (set where the partition is taken over)
    ready: bool = True  # False while the states are being restored (the partition is paused)
    watermark: datetime | None = None  # newest event time seen (the event rule clock)

    def state(self, key: bytes) -> DeviceState:
        """Return the device's state (decoded on first use; a new one for a new device)."""
        state = self.states.get(key)
        if state is None:
            raw = self.restored.pop(key, None)
            state = self.states[key] = load_state(raw)
            if raw is not None:
                self.saved[key] = raw
        return state

    def snapshot(self, key: bytes) -> bytes | None:
        """Return the device's state serialised as it is now (None if it has none yet)."""
        raw = self.restored.get(key) or self.saved.get(key)
        if raw is None and (state := self.states.get(key)) is not None:
            raw = self.saved[key] = dump_state(state)  # copy on need: changed since serialised
        return raw

    def changed(self, key: bytes) -> None:
        """Note that the device's state changed (it goes to the next changelog commit)."""
        self.dirty.add(key)
        self.saved.pop(key, None)

    def put_back(self, key: bytes, raw: bytes | None) -> None:
        """Set the device's state to a :meth:`snapshot` (decoded again on next use)."""
        self.states.pop(key, None)
        self.saved.pop(key, None)
        if raw is None:
            self.restored.pop(key, None)
            self.dirty.discard(key)
        else:
            self.restored[key] = raw

    def device_keys(self) -> list[bytes]:
        """Return every device key this partition holds a state for."""
        return [*self.states, *self.restored]

    @property
    def pending(self) -> bool:
        """Whether anything waits for the next transaction."""
        return bool(self.outbox or self.dirty or self.next_offset is not None)

    def take(self) -> Pending | None:
        """Hand the uncommitted work over to a transaction (states serialised now); None if none.

        Processing may go on while that transaction commits: later work is the next one's.
        """
        if not self.pending:
            return None
        changelog = []
        for key in self.dirty:
            raw = self.saved[key] = dump_state(self.state(key))
            changelog.append((key, raw))
        taken = Pending(self.partition, self.outbox, changelog, self.next_offset)
        self.outbox, self.dirty, self.next_offset = [], set(), None
        return taken


@dataclass
class Tracker:
    """Applies intake, the engine and live scene matching to records (see the module docstring)."""

    registry: ConditionsRegistry
    settings: Settings
    live: LiveMatcher
    engine: Engine = field(init=False)
    _consumed: Counter[str] = field(init=False, default_factory=Counter)  # this batch, by type
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.engine = Engine(self.registry, self.settings)
        self.projector = get_projector(self.registry.crs)  # the zone index's projection

    def process(self, batch: list[tuple[PartitionWork, Record]], now: datetime) -> None:
        """Apply ``batch`` (records in partition order) at wall time ``now``.

        A record whose processing raises is dead-lettered (``processing_error``) with its
        device's state as it was before the record; the next record goes on
        (:mod:`em_service.failures`; ``fail_fast`` re-raises instead).
        """
        began = time.perf_counter()
        items = [self._intake_or_letter(work, rec, now) for work, rec in batch]
        projected = self._project(batch, items, now)
        readings = [None if isinstance(i, DeadLetter) else i for i in items]
        rules_began = time.perf_counter()
        try:
            verdicts = self.engine.evaluate_batch(readings, (projected.x, projected.y))
        except Exception:
            if self.settings.fail_fast:
                raise
            # Which fix? Each is then evaluated on its own, where a failure is its own.
            log.exception("batch zone evaluation failed; evaluating the fixes one by one")
            verdicts = {}
        for pos, ((work, rec), item) in enumerate(zip(batch, items, strict=True)):
            work.next_offset = rec.offset + 1
            if isinstance(item, DeadLetter):
                self._dead_letter(work, rec.key, item)
                continue
            key = rec.key or b""
            before, watermark = work.snapshot(key), work.watermark
            try:
                xy = (float(projected.x[pos]), float(projected.y[pos]))
                self._apply(work, rec, item, now, verdicts.get(pos), xy)
            except Exception as exc:
                if self.settings.fail_fast:
                    raise
                work.put_back(key, before)
                work.watermark = watermark
                rejected = failures.record_failed("worker", f"{rec.partition}@{rec.offset}", exc)
                self._dead_letter(work, rec.key, self._letter(rec, rejected, now))
        for kind, n in self._consumed.items():
            metrics.READINGS_CONSUMED.labels(kind).inc(n)
        self._consumed.clear()
        if batch:
            done = time.perf_counter()
            metrics.RULE_EVALUATION.observe((done - rules_began) / len(batch))
            metrics.PROCESSING.observe((done - began) / len(batch))

    def _apply(
        self,
        work: PartitionWork,
        rec: Record,
        item: Reading,
        now: datetime,
        verdicts: list[ZoneVerdict] | None,
        xy: tuple[float, float],
    ) -> None:
        """Apply one reading to its device's state; outputs only once it all went through."""
        key = rec.key or b""
        state = work.state(key)
        stream_now = self._stream_clock(work, item, now)
        result = self.engine.on_reading(
            state, item, now=now, stream_now=stream_now, verdicts=verdicts, xy=xy
        )
        if result.unknown_device:
            self._unknown_device(work, rec, item, now)
            return
        alerts = result.alerts
        if isinstance(item, GpsReading) and state.offender_id and not result.paused:
            state.scenes, near = self.live.on_fix(
                state.offender_id, item, state.scenes, now=now, stream_now=stream_now, xy=xy
            )
            alerts = [*alerts, *near]
        self._alerts(work, alerts)
        work.changed(key)
        metrics.EVENT_LAG.observe((now - item.ts).total_seconds())

    def tick(self, work: PartitionWork, wall: datetime) -> Counter[str]:
        """Time passes for every device of ``work``: silence checks, reorder flushes, window ends.

        Returns the partition's open episodes by kind and its silent devices (for the gauges).
        """
        states = [(key, work.state(key)) for key in work.device_keys()]
        rule_now = wall
        if self.settings.rule_clock == "event":
            seen = [s.silence.last_ts for _, s in states if s.silence.last_ts]
            if work.watermark is not None:
                seen.append(work.watermark)
            rule_now = max(seen) if seen else wall
        check_silence = (
            self.settings.rule_clock == "event"
            or time.monotonic() - self.started >= self.settings.startup_grace_s
        )
        counts: Counter[str] = Counter()
        for key, state in states:
            before = work.snapshot(key)
            try:
                alerts = self.engine.on_tick(
                    state, key.decode(), now=rule_now, detected_at=wall, check_silence=check_silence
                )
            except Exception:
                if self.settings.fail_fast:
                    raise
                # No record to dead-letter: the state stays as it was, the next tick tries again.
                work.put_back(key, before)
                state = work.state(key)
                failures.RECORDS_FAILED.labels("worker", "tick_error").inc()
                log.exception("tick of device %r failed; its state is left as it was", key)
                alerts = []
            if dump_state(state) != before:
                work.changed(key)
            self._alerts(work, alerts)
            counts.update(self.engine.open_episode_kinds(state))
            counts["silent"] += bool(state.silence.open)
        return counts

    def _intake_or_letter(
        self, work: PartitionWork, rec: Record, now: datetime
    ) -> Reading | DeadLetter:
        try:
            return self._intake(work, rec, now)
        except Exception as exc:
            if self.settings.fail_fast:
                raise
            where = f"{rec.partition}@{rec.offset}"
            return self._letter(rec, failures.record_failed("worker", where, exc), now)

    def _project(
        self, batch: list[tuple[PartitionWork, Record]], items: list, now: datetime
    ) -> Projected:
        """Project the batch's fixes; dead-letter (in ``items``) those that cannot be."""
        try:
            projected = project_fixes(items, self.projector)
        except Exception:
            if self.settings.fail_fast:
                raise
            log.exception("projecting the batch failed; projecting its fixes one by one")
            projected = Projected(np.full(len(items), np.nan), np.full(len(items), np.nan), {})
            for pos, item in enumerate(items):
                try:
                    one = project_fixes([item], self.projector)
                except Exception as exc:
                    rec = batch[pos][1]
                    rejected = failures.record_failed(
                        "worker", f"{rec.partition}@{rec.offset}", exc
                    )
                    items[pos] = self._letter(rec, rejected, now)
                    continue
                projected.x[pos], projected.y[pos] = one.x[0], one.y[0]
                if 0 in one.rejected:
                    projected.rejected[pos] = one.rejected[0]
        for pos, rejected in projected.rejected.items():
            failures.RECORDS_FAILED.labels("worker", "unprojectable").inc()
            items[pos] = self._letter(batch[pos][1], rejected, now)
        return projected

    def _intake(self, work: PartitionWork, rec: Record, now: datetime) -> Reading | DeadLetter:
        source = Source(rec.topic, rec.partition, rec.offset, rec.key)
        outcome = triage(rec.value, source, self.settings, now, watermark=work.watermark)
        if isinstance(outcome, DeadLetter):
            return outcome
        self._consumed[reading_type(outcome)] += 1
        if rec.key != outcome.device_id.encode():
            reason = f"key {rec.key!r} is not device_id {outcome.device_id!r}"
            return self._letter(rec, Rejected("wrong_key", reason), now)
        return outcome

    def _stream_clock(self, work: PartitionWork, reading: Reading, now: datetime) -> datetime:
        if self.settings.rule_clock == "wall":
            return now
        if work.watermark is None or reading.ts > work.watermark:
            work.watermark = reading.ts
        return work.watermark

    def _alerts(self, work: PartitionWork, alerts: list[Alert]) -> None:
        topic = self.settings.topic_alerts
        outputs = [Output(topic, a.offender_id.encode(), encode(a)) for a in alerts]
        work.outbox += outputs
        for alert in alerts:
            metrics.ALERTS_EMITTED.labels(alert.type, alert.severity).inc()

    def _dead_letter(self, work: PartitionWork, key: bytes | None, letter: DeadLetter) -> None:
        metrics.READINGS_REJECTED.labels(letter.reason).inc()
        log.info(
            "dead-lettered %s@%s: %s", letter.source_partition, letter.source_offset, letter.detail
        )
        key = dead_letter_key(key) if key is not None else None
        work.outbox.append(Output(self.settings.topic_dlq, key, encode(letter)))

    def _unknown_device(
        self, work: PartitionWork, rec: Record, reading: Reading, now: datetime
    ) -> None:
        metrics.UNKNOWN_DEVICES.inc()
        log.warning("reading from unknown device %s", reading.device_id)
        if self.settings.dlq_unknown_devices:
            rejected = Rejected("unknown_device", f"no one is enrolled with {reading.device_id}")
            self._dead_letter(work, rec.key, self._letter(rec, rejected, now))

    def _letter(self, rec: Record, rejected: Rejected, now: datetime) -> DeadLetter:
        return failures.letter_for(rec, rejected, self.settings, now)
