"""Receiving crime batches (CLI, API, drop folder) and starting their matching runs.

:func:`check` parses only (no Kafka, no database). :func:`receive` parses, stores each batch
of the file with its crimes and scenes and starts a run (``upload`` or ``resend``), and returns
the scenes to publish: *every* crime of each batch, so the run searches the whole batch. The
caller publishes them to the scenes topic after the commit; the archiver searches each scene
and counts it towards the run (:func:`~em_service.scenes.batches.store.note_searched`).
:func:`rerun` starts a new run of a stored batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from em_service.contracts import Scene
from em_service.scenes.batches import store as batch_store
from em_service.scenes.batches.config import BatchSettings
from em_service.scenes.batches.format import BATCH_ID, Parsed, Parser
from em_service.scenes.config import SceneSettings
from em_service.store import Store


@dataclass
class Received:
    """What receiving a file did: the parse, and per batch its trigger and run id."""

    parsed: Parsed
    runs: dict[str, tuple[str, int]] = field(default_factory=dict)
    scenes: list[Scene] = field(default_factory=list)
    file_sha256: str = ""

    def report(self) -> dict[str, Any]:
        out = self.parsed.report()
        out["runs"] = {b: {"trigger": t, "run_id": r} for b, (t, r) in self.runs.items()}
        out["file_sha256"] = self.file_sha256
        return out


def _force_of(batch_id: str, forces: dict[str, str]) -> str | None:
    """Return the force code of a well-formed batch id of a configured force, else None."""
    m = BATCH_ID.match(batch_id)
    if m is None or m.group(1).casefold() not in forces:
        return None
    try:
        datetime.strptime(m.group(2), "%Y%m%d")
    except ValueError:
        return None
    return forces[m.group(1).casefold()]


def check(data: bytes, settings: BatchSettings, *, now: datetime, crs: str) -> Parsed:
    """Parse ``data`` and return what would be accepted and rejected (nothing is stored)."""
    return Parser(settings, now=now, crs=crs).parse(data)


def receive(
    store: Store,
    data: bytes,
    *,
    batch_settings: BatchSettings,
    scene_settings: SceneSettings,
    crs: str,
    source: str,
    file_name: str | None,
    now: datetime,
) -> Received:
    """Parse and store ``data``; start a run per batch; return what to publish.

    A rejected row without a usable batch id counts towards the file's batch when the file
    holds one batch (the usual case), and is only reported otherwise.
    """
    parsed = check(data, batch_settings, now=now, crs=crs)
    out = Received(parsed, file_sha256=hashlib.sha256(data).hexdigest())
    forces = {code.casefold(): code for code in batch_settings.force_table()}
    named = {c.batch_id: c.force_code for c in parsed.crimes}
    for r in parsed.rejections:  # a batch whose rows were all rejected is still a batch
        code = _force_of(r.batch_id, forces)
        if code is not None:
            named.setdefault(r.batch_id, code)
    batches = sorted(named)
    params = batch_store.parameters(scene_settings, batch_settings.radii())
    with store.write() as session:
        for batch_id in batches:
            crimes = [c for c in parsed.crimes if c.batch_id == batch_id]
            rejections = [
                r
                for r in parsed.rejections
                if r.batch_id == batch_id or (len(batches) == 1 and r.batch_id not in batches)
            ]
            batch_store.store_scenes(session, [c.scene for c in crimes], crs=crs, now=now)
            _batch, run = batch_store.record_batch(
                session,
                batch_id,
                crimes,
                rejections,
                force_code=named[batch_id],
                source=source,
                file_name=file_name,
                file_sha256=out.file_sha256,
                params=params,
                now=now,
            )
            out.runs[batch_id] = (run.trigger, run.run_id)
            out.scenes += batch_store.scenes_of(session, batch_id)
    return out


def rerun(
    store: Store,
    batch_id: str,
    *,
    trigger: str,
    batch_settings: BatchSettings,
    scene_settings: SceneSettings,
    now: datetime,
) -> tuple[int, list[Scene]] | None:
    """Start a new run of a stored batch; return (run id, scenes to publish), None if unknown."""
    params = batch_store.parameters(scene_settings, batch_settings.radii())
    with store.write() as session:
        if batch_store.get_batch(session, batch_id) is None:
            return None
        run = batch_store.start_run(session, batch_id, trigger, params=params, now=now)
        return run.run_id, batch_store.scenes_of(session, batch_id)


async def publish_all(scenes: list[Scene], send: Callable[[Scene], Awaitable[Any]]) -> None:
    """Publish ``scenes`` one by one with ``send`` (which waits for the acknowledgement)."""
    for scene in scenes:
        await send(scene)
