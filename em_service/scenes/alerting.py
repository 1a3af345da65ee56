"""The ``scene_proximity`` alert of a new or upgraded match (shared by retro and live matching).

The id is deterministic per (offender, confidence level, scene, scene window start): the
archive search and the live worker finding the same level for the same person produce the
same ``alert_id``, and so does any re-processing. The alert carries numbers, not the trail:
the fixes are evidence for investigators (``GET /scenes/{id}/matches/{offender}/evidence``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from em_service.contracts import Alert, Location, Scene
from em_service.rules.ids import alert_id
from em_service.scenes.matching import RANK, Match

SEVERITY: dict[str, Literal["low", "medium", "high"]] = {
    "at_scene": "high",
    "passed_by": "medium",
    "near_scene": "low",
}
RULE = "scene_proximity"


def scene_alert_id(offender_id: str, confidence: str, scene: Scene) -> str:
    """Return the id of the alert for (offender, confidence level, scene)."""
    return alert_id(offender_id, f"{RULE}:{confidence}", scene.scene_id, scene.window_start)


def should_alert(
    match: Match, *, alerted_rank: int, scene: Scene, alert_low_precision: bool
) -> bool:
    """Return True if ``match`` is stronger than anything alerted and the scene may alert."""
    return match.rank > max(alerted_rank, RANK["excluded"]) and (
        alert_low_precision or not scene.low_precision
    )


def scene_alert(
    scene: Scene,
    match: Match,
    *,
    now: datetime,
    origin: Literal["retro", "live"],
    previous: str | None = None,
    late: bool = False,
) -> Alert:
    """Return the ``scene_proximity`` alert for ``match`` of ``scene``."""
    inside = [f.ts_s for f in match.fixes if f.inside and f.in_window]
    started = min(inside) if inside else match.closest_ts_s
    return Alert(
        alert_id=scene_alert_id(match.offender_id, match.confidence, scene),
        type="scene_proximity",
        severity=SEVERITY[match.confidence],
        offender_id=match.offender_id,
        occurred_at=datetime.fromtimestamp(match.closest_ts_s, tz=UTC),
        detected_at=now,
        device_id=match.device_id,
        location=Location(
            lat=match.closest_lat, lon=match.closest_lon, accuracy_m=match.worst_accuracy_m
        ),
        scene_id=scene.scene_id,
        episode_start=datetime.fromtimestamp(started, tz=UTC),
        late=late,
        details={
            "confidence": match.confidence,
            "previous_confidence": previous,
            "closest_approach_m": match.closest_m,
            "closest_source": match.closest_source,
            "dwell_s": match.dwell_s,
            "fixes_inside": match.fixes_inside,
            "segments_used": len(match.segments),
            "worst_accuracy_m": match.worst_accuracy_m,
            "in_window": match.in_window,
            "radius_m": scene.radius_m,
            "crime_reference": scene.crime_reference,
            "crime_type": scene.crime_type,
            "window_start": scene.window_start.astimezone(UTC).isoformat(),
            "window_end": scene.window_end.astimezone(UTC).isoformat(),
            "low_precision": scene.low_precision,
            "origin": origin,
        },
    )
