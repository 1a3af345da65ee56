"""The archiver's side of batch runs: count each searched scene towards its batch's run."""

from __future__ import annotations

import logging
from datetime import datetime

from em_service.scenes.batches import store as batch_store
from em_service.scenes.batches.config import get_batch_settings
from em_service.scenes.config import SceneSettings
from em_service.store import Store

log = logging.getLogger(__name__)


def note_searched(
    store: Store, scene_id: str, settings: SceneSettings, *, now: datetime, late: bool
) -> None:
    """Record that ``scene_id`` was searched (finishing its batch's run when it is the last)."""
    params = batch_store.parameters(settings, get_batch_settings().radii())
    with store.write() as session:
        run = batch_store.note_searched(session, scene_id, now=now, late=late, params=params)
        if run is not None:
            log.info(
                "crime batch %s run %d (%s) done: %d crimes, %d changes",
                run.batch_id,
                run.run_id,
                run.trigger,
                run.crimes,
                len(batch_store.run_dict(run)["changes"] or []),
            )
