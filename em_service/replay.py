"""Replay a simulation through a running worker and collect what it alerted (demo, tests, bench).

:func:`replay` sends a :class:`~simulator.engine.Simulation` to Kafka (paced or as fast as
possible), follows the worker's progress on its ``/metrics``, reads the alerts topic
(read_committed) as alerts arrive, and returns them with the :class:`~em_service.evaluate.
StreamClock` that maps their ``detected_at`` to the replayed stream's time (from the worker's
progress, and the replay's own for the archiver's scene matches). The worker must run with
``EM_RULE_CLOCK=event`` (timers on the stream's event time, not the wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from em_service import kafka_io
from em_service.clock import wall_now
from em_service.contracts import Alert
from em_service.evaluate import StreamClock, decode_alerts
from em_service.scrape import scrape, total
from em_service.settings import Settings

if TYPE_CHECKING:
    from simulator.engine import Simulation

PROGRESS = ("em_readings_consumed_total", "em_readings_rejected_total")


@dataclass
class Replayed:
    """What a replay produced."""

    alerts: list[Alert]
    clock: StreamClock
    readings: int
    elapsed_s: float
    samples: list[tuple[float, float]] = field(default_factory=list)


def delivered_times(sim: Simulation) -> np.ndarray:
    """Return the delivery instants (epoch s) of every reading, in the order they are sent."""
    parts = (sim.fixes.delivered_s, sim.alcohol.delivered_s, sim.events.delivered_s)
    return np.sort(np.concatenate(parts), kind="stable")


def processed(metrics_url: str) -> float:
    """Return the readings the worker has taken in (consumed or dead-lettered)."""
    samples = scrape(metrics_url)
    return sum(total(samples, name) for name in PROGRESS)


async def _follow(
    settings: Settings,
    mark: dict,
    on_alert: Callable[[Alert], None] | None,
    out: list[Alert],
    last_arrival: list[float],
) -> None:
    consumer = kafka_io.consumer(bootstrap=settings.kafka_bootstrap, settings=settings)
    await consumer.start()
    try:
        consumer.assign(list(mark))
        for tp, offset in mark.items():
            consumer.seek(tp, offset)
        seen: set[str] = set()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for alert in decode_alerts(m.value for msgs in batch.values() for m in msgs):
                last_arrival[0] = time.monotonic()
                if alert.alert_id in seen:
                    continue
                seen.add(alert.alert_id)
                out.append(alert)
                if on_alert:
                    on_alert(alert)
    finally:
        await consumer.stop()


def _stamped(url: str, wall: Callable[[], float]) -> tuple[float, float]:
    """Return ``(wall epoch s, readings taken in)``, timed in this thread, not by the caller."""
    before = wall()
    n = processed(url)
    return (before + wall()) / 2, n


async def _sample(
    url: str, base: float, samples: list[tuple[float, float]], wall: Callable[[], float]
) -> None:
    """Append the worker's progress ``(wall, readings taken in since base)`` every 50 ms."""
    while True:
        with contextlib.suppress(OSError):
            at, n = await asyncio.to_thread(_stamped, url, wall)
            samples.append((at, n - base))
        await asyncio.sleep(0.05)


async def _sample_sent(
    bootstrap: str, base: dict, sent: list[tuple[float, float]], wall: Callable[[], float]
) -> None:
    """Append the replay's progress ``(wall, readings on the topic past base)`` every 50 ms."""
    consumer = kafka_io.consumer(bootstrap=bootstrap)
    await consumer.start()
    try:
        tps = list(base)
        while True:
            before = wall()
            ends = await consumer.end_offsets(tps)
            sent.append(((before + wall()) / 2, sum(ends[tp] - base[tp] for tp in tps)))
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


async def replay(
    sim: Simulation,
    settings: Settings,
    *,
    metrics_url: str,
    speed: float | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    timeout_s: float = 900.0,
    settle_s: float = 3.0,
) -> Replayed:
    """Send ``sim`` to the settings' topics, wait for the worker, return the alerts it raised.

    ``speed`` None sends as fast as possible, else ×speed by delivery time. ``on_alert`` is
    called for each new alert as it arrives; ``on_progress(readings processed, stream epoch s)``
    about five times a second. Returns when the worker has taken in every reading and no alert
    arrived for ``settle_s``; raises TimeoutError after ``timeout_s``.
    """
    from simulator.clock import Pacer
    from simulator.output import send_kafka

    began = time.monotonic()
    delivered = delivered_times(sim)
    n = len(delivered)
    mark = await kafka_io.end_offsets(settings.kafka_bootstrap, settings.topic_alerts, settings)
    if not mark:
        raise RuntimeError(f"topic {settings.topic_alerts} does not exist (create the topics)")
    base = await asyncio.to_thread(processed, metrics_url)
    sent_base = await kafka_io.end_offsets(
        settings.kafka_bootstrap, settings.topic_readings, settings
    )
    alerts: list[Alert] = []

    def wall() -> float:  # the services' wall clock (``detected_at``)
        return wall_now(settings).timestamp()

    samples: list[tuple[float, float]] = [(wall(), 0.0)]
    sent: list[tuple[float, float]] = [(wall(), 0.0)] if speed is not None else []
    last_arrival = [time.monotonic()]
    tasks = [
        asyncio.create_task(_follow(settings, mark, on_alert, alerts, last_arrival)),
        asyncio.create_task(_sample(metrics_url, base, samples, wall)),
    ]
    if speed is not None:  # the replay's own progress is a clock only when paced
        tasks.append(
            asyncio.create_task(_sample_sent(settings.kafka_bootstrap, sent_base, sent, wall))
        )
    sending: asyncio.Task | None = None
    try:
        topics = {
            "readings": settings.topic_readings,
            "conditions": settings.topic_conditions,
            "scenes": settings.topic_scenes,
            "victim_readings": settings.topic_victim_readings,
        }
        sending = asyncio.create_task(
            send_kafka(
                sim,
                settings.kafka_bootstrap,
                topics=topics,
                pacer=Pacer(speed),
                partitions=settings.topic_partitions,
                max_request_size=settings.kafka_max_message_bytes,
                settings=settings,
            )
        )
        shown = 0
        while True:
            await asyncio.sleep(0.2)
            if time.monotonic() - began > timeout_s:
                raise TimeoutError(f"the worker took in {samples[-1][1]:.0f} of {n} readings")
            done = int(samples[-1][1])
            if on_progress and done != shown:
                shown = done
                on_progress(done, float(delivered[min(max(done - 1, 0), n - 1)]))
            if sending.done():
                sending.result()  # raise if sending failed
                if done >= n and time.monotonic() - last_arrival[0] >= settle_s:
                    break
    finally:
        for task in [*tasks, sending]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*tasks, *([sending] if sending else []), return_exceptions=True)
    return Replayed(
        alerts=alerts,
        clock=StreamClock(samples, delivered, sent),
        readings=n,
        elapsed_s=time.monotonic() - began,
        samples=samples,
    )
