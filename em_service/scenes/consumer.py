"""The archiver's scene task: a scene on the scenes topic → retrospective search → matches stored
→ ``scene_proximity`` alerts on the alerts topic.

Its own consumer group (``<app_id>-scenes``) on the scenes topic and the alerts topic. Each poll:

* every scene is stored and searched (:func:`em_service.scenes.retro.run`); new or upgraded
  matches put their alert in the database outbox (same transaction as the match);
* every ``scene_proximity`` alert from the live worker is recorded on its match (so it is not
  alerted twice) and the scene is re-matched from the archive ``rematch_delay_s`` later, when
  the late fixes that caused it are archived too;
* then the outbox is sent (acks=all, idempotent producer) and cleared, and only then are the
  offsets committed. A crash anywhere re-delivers the batch or leaves the outbox full: alerts
  may be sent twice, with the same deterministic ``alert_id``, never lost. A failed batch is
  retried with backoff, never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from em_service.contracts import Scene
from em_service.lag import ConsumerLag
from em_service.scenes import metrics, retro
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings, get_scene_settings
from em_service.settings import Settings
from em_service.store import Store

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

    def search(self, scene: Scene) -> None:
        """Store and search one scene, counting what it found (alerts go to the outbox)."""
        found, stored = retro.run(
            self.store,
            scene,
            self.scene_settings,
            crs=self.settings.projected_crs,
            now=datetime.now(UTC),
        )
        metrics.SCENE_SEARCH_SECONDS.observe(found.seconds)
        for confidence in stored.new_or_upgraded:
            metrics.SCENE_MATCHES.labels(confidence).inc()
        if stored.alerts:
            self._outbox_checked = -float("inf")
        log.info("scene %s searched: %s", scene.scene_id, found.summary())

    def note_live(self, alerts: list[dict]) -> None:
        """Record live ``scene_proximity`` alerts on their matches; schedule re-matches."""
        now = datetime.now(UTC)
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
            with self.store.read() as session:
                row = scene_store.get_scene(session, scene_id)
            if row is not None:
                self.search(scene_store.scene_message(row))
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
        scenes: list[Scene] = []
        live: list[dict] = []
        for tp, msgs in records.items():
            for msg in msgs:
                if tp.topic == self.settings.topic_scenes:
                    if msg.value is None:
                        continue  # a withdrawn scene keeps its stored matches (evidence)
                    try:
                        scenes.append(_scene_decoder.decode(msg.value))
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
                        live.append(alert)
        return scenes, live

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
        for scene in scenes:
            await asyncio.to_thread(self.search, scene)
        if live:
            await asyncio.to_thread(self.note_live, live)
        await asyncio.to_thread(self.rematch_due)
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
        consumer = AIOKafkaConsumer(
            s.topic_scenes,
            s.topic_alerts,
            bootstrap_servers=s.kafka_bootstrap,
            group_id=group_id(s),
            client_id=f"{s.app_id}-scenes",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id=f"{s.app_id}-scenes",
        )
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
                    for tp, msgs in records.items():
                        consumer.seek(tp, msgs[0].offset)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
        finally:
            await producer.stop()
            await consumer.stop()
