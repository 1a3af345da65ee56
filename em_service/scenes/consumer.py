"""The archiver's scene task: a scene on the scenes topic → retrospective search → matches stored
→ ``scene_proximity`` alerts on the alerts topic.

Its own consumer group (``<app_id>-scenes``) on the scenes topic and the alerts topic. Each poll:

* every scene is stored and searched (:func:`em_service.scenes.retro.run`); new or upgraded
  matches put their alert in the database outbox (same transaction as the match); a reported
  scene (not a crime batch's, whose crimes are days old) is searched again ``rematch_delay_s``
  later: fixes delivered before the scene but archived after its search (another archiver, or
  this one's readings behind its scenes) were otherwise matched neither here nor live;
* every ``scene_proximity`` alert from the live worker is recorded on its match (so it is not
  alerted twice) and the scene is re-matched from the archive ``rematch_delay_s`` later, when
  the late fixes that caused it are archived too;
* then the outbox is sent (acks=all, idempotent producer) and cleared, and only then are the
  offsets committed. A crash anywhere re-delivers the batch or leaves the outbox full: alerts
  may be sent twice, with the same deterministic ``alert_id``, never lost. A failed batch is
  retried with backoff, never skipped — unless a record is at fault (not the database or the
  broker): a scene whose search raises, or a live alert that cannot be recorded, is
  dead-lettered (``processing_error``, :mod:`em_service.failures`) before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from em_service import failures, kafka_io
from em_service.clock import wall_now
from em_service.contracts import DeadLetter, Scene
from em_service.contracts.codec import Rejected
from em_service.lag import ConsumerLag
from em_service.scenes import metrics, retro
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings, get_scene_settings
from em_service.settings import Settings
from em_service.store import Store
from geofences.projection import get_projector

log = logging.getLogger(__name__)
_scene_decoder = msgspec.json.Decoder(Scene)
_BACKOFF_MAX_S = 30.0
_OUTBOX_RECHECK_S = 30.0


def group_id(settings: Settings) -> str:
    """Return the scene consumer's group."""
    return f"{settings.app_id}-scenes"


class SceneConsumer:
    """Retrospective matching of arriving scenes, inside the archiver process."""

    def __init__(
        self, settings: Settings, store: Store, scene_settings: SceneSettings | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.scene_settings = scene_settings or get_scene_settings()
        self._due: dict[str, float] = {}  # scene_id → monotonic time of its re-match
        self.lag = ConsumerLag("scenes")
        self._outbox_checked = -float("inf")  # monotonic time the outbox was last emptied

    # --- Blocking work (run in a thread) --------------------------------------------------

    def search(self, scene: Scene, *, late: bool = False) -> None:
        """Store and search one scene, counting what it found (alerts go to the outbox); a
        crime batch's scene counts towards its batch's run (``late``: a re-match after late
        fixes)."""
        now = wall_now(self.settings)
        found, stored = retro.run(
            self.store, scene, self.scene_settings, crs=self.settings.projected_crs, now=now
        )
        if (scene.source or "").startswith("crime-batch/"):
            from em_service.scenes.batches.runs import note_searched

            note_searched(self.store, scene.scene_id, self.scene_settings, now=now, late=late)
        if not late and not (scene.source or "").startswith("crime-batch/"):
            self._due.setdefault(
                scene.scene_id, time.monotonic() + self.scene_settings.rematch_delay_s
            )
        metrics.SCENE_SEARCH_SECONDS.observe(found.seconds)
        for confidence in stored.new_or_upgraded:
            metrics.SCENE_MATCHES.labels(confidence).inc()
        if stored.alerts:
            self._outbox_checked = -float("inf")
        log.info("scene %s searched: %s", scene.scene_id, found.summary())

    def note_live(self, alerts: list[dict]) -> None:
        """Record live ``scene_proximity`` alerts on their matches; schedule re-matches."""
        now = wall_now(self.settings)
        with self.store.write() as session:
            for a in alerts:
                known = scene_store.note_live_alert(
                    session,
                    scene_id=a["scene_id"],
                    offender_id=a["offender_id"],
                    alert=a,
                    now=now,
                )
                if not known:
                    log.warning("live match for unknown scene %s (not stored yet)", a["scene_id"])
        due = time.monotonic() + self.scene_settings.rematch_delay_s
        for a in alerts:
            self._due.setdefault(a["scene_id"], due)

    def rematch_due(self) -> int:
        """Re-match the scenes whose delay is over; return how many."""
        now = time.monotonic()
        ready = [s for s, t in self._due.items() if t <= now]
        for scene_id in ready:
            try:
                with self.store.read() as session:
                    row = scene_store.get_scene(session, scene_id)
                if row is not None:
                    self.search(scene_store.scene_message(row), late=True)
            except Exception as exc:
                if self.settings.fail_fast or failures.is_transient(exc):
                    raise
                # The scene's record was handled already; nothing to dead-letter.
                failures.RECORDS_FAILED.labels("scenes", "processing_error").inc()
                log.exception("re-matching scene %s failed; not retried", scene_id)
            del self._due[scene_id]
        return len(ready)

    def pending(self) -> list[tuple[str, str, int, bytes]]:
        with self.store.read() as session:
            return scene_store.pending_alerts(session)

    def mark_sent(self, sent: list[tuple[str, str, int]]) -> None:
        with self.store.write() as session:
            scene_store.mark_alerted(session, sent)

    # --- The loop -------------------------------------------------------------------------

    def _sort(self, records: dict[TopicPartition, list[ConsumerRecord]]):
        scenes: list[tuple[Scene, ConsumerRecord]] = []
        live: list[tuple[dict, ConsumerRecord]] = []
        for tp, msgs in records.items():
            for msg in msgs:
                if tp.topic == self.settings.topic_scenes:
                    if msg.value is None:
                        continue  # a withdrawn scene keeps its stored matches (evidence)
                    try:
                        scenes.append((_scene_decoder.decode(msg.value), msg))
                        metrics.SCENES_RECEIVED.inc()
                    except (msgspec.MsgspecError, ValueError) as exc:
                        metrics.SCENES_INVALID.labels("archiver").inc()
                        log.error("invalid scene skipped at %s@%s: %s", tp, msg.offset, exc)
                elif msg.value and b'"scene_proximity"' in msg.value:
                    try:
                        alert = msgspec.json.decode(msg.value)
                    except msgspec.MsgspecError:
                        continue  # the archiver counts invalid alerts
                    if alert.get("details", {}).get("origin") == "live" and alert.get("scene_id"):
                        live.append((alert, msg))
        return scenes, live

    def _projectable(self, scene: Scene, msg: ConsumerRecord, letters: list[DeadLetter]) -> bool:
        """Whether ``scene`` can be projected; if not, dead-letter it (``unprojectable``)."""
        projector = get_projector(self.settings.projected_crs)
        if bool(projector.to_xy_checked(scene.lon, scene.lat)[2]):
            return True
        failures.RECORDS_FAILED.labels("scenes", "unprojectable").inc()
        detail = f"scene lat {scene.lat}, lon {scene.lon} cannot be projected to {projector.crs}"
        log.error("unprojectable scene %s dead-lettered", scene.scene_id)
        letters.append(failures.letter_for(msg, Rejected("unprojectable", detail), self.settings))
        return False

    def _failed(self, msg: ConsumerRecord, exc: Exception, letters: list[DeadLetter]) -> None:
        """Dead-letter a record that failed on its own; re-raise infrastructure errors."""
        if self.settings.fail_fast or failures.is_transient(exc):
            raise exc
        where = f"{msg.topic}/{msg.partition}@{msg.offset}"
        letters.append(
            failures.letter_for(msg, failures.record_failed("scenes", where, exc), self.settings)
        )

    async def send_pending(self, producer: AIOKafkaProducer) -> int:
        """Send every alert in the outbox and clear it; return how many were sent.

        The outbox is read when a search queued alerts, and otherwise every
        ``_OUTBOX_RECHECK_S`` (leftovers of a crash or a failed send), not on every poll.
        """
        if time.monotonic() - self._outbox_checked < _OUTBOX_RECHECK_S:
            return 0
        total = 0
        while True:
            pending = await asyncio.to_thread(self.pending)
            if not pending:
                self._outbox_checked = time.monotonic()
                return total
            futures = [
                await producer.send(self.settings.topic_alerts, raw, key=offender.encode())
                for _scene, offender, _rank, raw in pending
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.scene_settings.publish_timeout_s)
            await asyncio.to_thread(self.mark_sent, [(s, o, r) for s, o, r, _ in pending])
            metrics.SCENE_ALERTS_SENT.inc(len(pending))
            total += len(pending)

    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        records: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        scenes, live = self._sort(records)
        letters: list[DeadLetter] = []
        scenes = [(sc, msg) for sc, msg in scenes if self._projectable(sc, msg, letters)]
        for scene, msg in scenes:
            try:
                await asyncio.to_thread(self.search, scene)
            except Exception as exc:
                self._failed(msg, exc, letters)
        if live:
            try:
                await asyncio.to_thread(self.note_live, [a for a, _ in live])
            except Exception as exc:
                if self.settings.fail_fast or failures.is_transient(exc):
                    raise
                for alert, msg in live:  # which one? each on its own
                    try:
                        await asyncio.to_thread(self.note_live, [alert])
                    except Exception as one_exc:
                        self._failed(msg, one_exc, letters)
        await asyncio.to_thread(self.rematch_due)
        if letters:
            await failures.send_letters(producer, self.settings.topic_dlq, letters)
        await self.send_pending(producer)
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in records.items() if msgs}
        if offsets:
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                log.warning("scene offsets not committed (batch will be re-delivered): %s", exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, search, alert and commit until ``stop`` is set."""
        s = self.settings
        consumer = kafka_io.consumer(
            s.topic_scenes,
            s.topic_alerts,
            bootstrap=s.kafka_bootstrap,
            group_id=group_id(s),
            client_id=f"{s.app_id}-scenes",
            auto_offset_reset="earliest",
            settings=s,
        )
        producer = kafka_io.producer(s, client_id=f"{s.app_id}-scenes")
        await consumer.start()
        await producer.start()
        backoff = 0.5
        try:
            while not stop.is_set():
                records = await consumer.getmany(
                    timeout_ms=int(self.scene_settings.poll_timeout_s * 1000)
                )
                try:
                    await self._handle(consumer, producer, records)
                    backoff = 0.5
                    for tp, msgs in records.items():
                        if msgs:
                            self.lag.processed(tp, msgs[-1].timestamp)
                    self.lag.observe_consumer(consumer)
                except Exception:
                    metrics.SCENE_ERRORS.inc()
                    log.exception("scene batch failed; retrying in %.1f s", backoff)
                    kafka_io.rewind(consumer, records)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
        finally:
            await producer.stop()
            await consumer.stop()
