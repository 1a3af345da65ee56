"""Intake of raw messages from ``em.readings``: a typed reading, or a dead letter with a reason.

Pure logic (no Kafka): the tracker calls :func:`triage` for every record, then
:func:`project_fixes` once per batch (fixes that cannot be projected are dead-lettered too);
dead letters go out with its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from em_service.clock import age_limit
from em_service.contracts import DeadLetter, GpsReading, Reading
from em_service.contracts.codec import Rejected, dead_letter, decode_reading
from em_service.limits import original_keep_bytes
from em_service.settings import Settings
from geofences.projection import Projector

if TYPE_CHECKING:
    from em_service.rules.victims import VictimFix


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (for the dead letter)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None


def triage(
    raw: bytes | None,
    source: Source,
    settings: Settings,
    now: datetime,
    *,
    watermark: datetime | None = None,
) -> Reading | DeadLetter:
    """Return the typed reading in ``raw``, or the dead letter that explains why it is not one
    (an oversize original cut to ``EM_MAX_MESSAGE_BYTES``).

    ``now`` is the wall clock; ``watermark`` the stream's event time so far (the age check's
    clock in a replay: :func:`~em_service.clock.age_limit`).
    """
    if raw is None:
        raw, rejected = b"", Rejected("invalid_json", "empty message (null value)")
    else:
        age_now, max_age_s = age_limit(settings, now, watermark)
        try:
            return decode_reading(
                raw,
                now=now,
                max_bytes=settings.max_message_bytes,
                max_future_s=settings.max_future_skew_s,
                max_age_s=max_age_s,
                age_now=age_now,
            )
        except Rejected as exc:
            rejected = exc
    return dead_letter(
        raw,
        rejected,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        key=source.key,
        now=now,
        keep_bytes=original_keep_bytes(settings),
    )


@dataclass(frozen=True, slots=True)
class Projected:
    """Projected metres of a batch's items (NaN where not a fix) and the unprojectable fixes."""

    x: np.ndarray
    y: np.ndarray
    rejected: dict[int, Rejected]


def project_fixes(items: list[Reading | DeadLetter], projector: Projector) -> Projected:
    """Project every GPS fix among ``items`` at once; reject those that cannot be projected.

    A fix outside the CRS area of use, or whose metres are not finite, is ``unprojectable``
    (:meth:`~geofences.projection.Projector.to_xy_checked`, the check the archiver uses too).
    """
    n = len(items)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    rows = [i for i, item in enumerate(items) if isinstance(item, GpsReading)]
    if not rows:
        return Projected(x, y, {})
    fixes: list[GpsReading] = [items[i] for i in rows]  # type: ignore[misc]
    lon = np.fromiter((f.lon for f in fixes), np.float64, len(rows))
    lat = np.fromiter((f.lat for f in fixes), np.float64, len(rows))
    fx, fy, ok = projector.to_xy_checked(lon, lat)
    x[rows], y[rows] = fx, fy
    rejected = {}
    if not ok.all():
        w, s, e, n_ = projector.area_of_use
        for k in np.flatnonzero(~ok).tolist():
            detail = (
                f"lat {lat[k]}, lon {lon[k]} cannot be projected to {projector.crs} "
                f"(area of use lon {w}..{e}, lat {s}..{n_}; got x {fx[k]}, y {fy[k]})"
            )
            rejected[rows[k]] = Rejected("unprojectable", detail)
    return Projected(x, y, rejected)


def triage_victim(
    raw: bytes | None,
    source: Source,
    settings: Settings,
    now: datetime,
    projector: Projector,
    *,
    watermark: datetime | None = None,
) -> tuple[str, VictimFix] | DeadLetter:
    """Return ``(victim device, fix)`` for a record of the victim topic, or its dead letter.

    The same decode as the readings (:func:`triage`), then: only GPS fixes (``unknown_type``),
    key = ``device_id`` (``wrong_key``), projectable (``unprojectable``).
    """
    from em_service.rules.victims import VictimFix

    outcome = triage(raw, source, settings, now, watermark=watermark)
    if isinstance(outcome, DeadLetter):
        return outcome
    if not isinstance(outcome, GpsReading):
        rejected = Rejected("unknown_type", "the victim topic takes GPS fixes only")
    elif source.key != outcome.device_id.encode():
        rejected = Rejected(
            "wrong_key", f"key {source.key!r} is not device_id {outcome.device_id!r}"
        )
    else:
        x, y, ok = projector.to_xy_checked(outcome.lon, outcome.lat)
        if bool(ok):
            fix = VictimFix(outcome.ts.timestamp(), float(x), float(y), outcome.accuracy_m)
            return outcome.device_id, fix
        rejected = Rejected("unprojectable", f"the fix cannot be projected to {projector.crs}")
    return dead_letter(
        raw or b"",
        rejected,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        key=source.key,
        now=now,
        keep_bytes=original_keep_bytes(settings),
    )
