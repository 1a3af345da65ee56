"""Settings of crime-scene matching: one typed, documented field each, read from ``EM_SCENES_*``.

Kept beside the domain so that the scenes package is self-contained; the service-wide settings
(topics, projected CRS, timezone, database) stay in :class:`em_service.settings.Settings`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SceneSettings(BaseSettings):
    """Matching rule parameters, search sizes and bounds (``EM_SCENES_`` + field name)."""

    model_config = SettingsConfigDict(env_prefix="EM_SCENES_", env_file=None, extra="ignore")

    # --- The confidence rule (see em_service/scenes/README.md) --------------------------
    time_pad_s: float = Field(
        3600.0, ge=0, description="Search this long before and after the window (near_scene)"
    )
    near_margin_m: float = Field(
        50.0, ge=0, description="near_scene: closest approach within radius + this, in window"
    )
    at_scene_dwell_s: float = Field(
        300.0, gt=0, description="at_scene: at least this long within the radius, in window"
    )
    at_scene_min_fixes: int = Field(
        2, ge=1, description="at_scene: at least this many fixes inside the radius, in window"
    )
    max_fix_accuracy_m: float = Field(
        100.0, gt=0, description="Fixes less accurate than this never place anyone at a scene"
    )
    max_gap_s: float = Field(
        600.0, gt=0, description="Interpolate between fixes at most this far apart"
    )
    max_speed_mps: float = Field(
        50.0, gt=0, description="… and only if the implied speed is at most this"
    )
    alibi_speed_mps: float = Field(
        15.0,
        gt=0,
        description="Exclusion: no detour to the scene was possible between consecutive fixes "
        "at this speed",
    )
    exclusion_reach_m: float = Field(
        200.0,
        ge=0,
        description="Exclusions are considered for people who came within radius + this of "
        "the scene in the padded window (the search finds them; the alibi reads their window)",
    )
    exclusion_max_window_s: float = Field(
        2 * 86400.0, gt=0, description="No exclusions for windows longer than this"
    )

    # --- Search sizes ------------------------------------------------------------------
    segment_reach_m: float = Field(
        400.0,
        gt=0,
        description="Search radius beyond the scene radius: a pass-by between two fixes is found "
        "when one of them lies within radius + this (400 m: up to 13 m/s at one fix a minute)",
    )
    evidence_max_fixes: int = Field(
        2000, ge=10, description="Most fixes kept as evidence of one match (nearest first)"
    )

    # --- Live matching -----------------------------------------------------------------
    open_days: float = Field(
        14.0, gt=0, description="Live: a scene is open while its window ended at most this ago"
    )
    live_max_track_fixes: int = Field(
        500, ge=10, description="Live: most fixes remembered per (device, open scene)"
    )

    # --- Alerts ------------------------------------------------------------------------
    alert_low_precision: bool = Field(
        False, description="Also alert on month-only (low-precision) scenes; they always match"
    )

    # --- Bounds of scenes taken in (API, importer) --------------------------------------
    default_radius_m: float = Field(100.0, description="Search radius when none is given, m")
    min_radius_m: float = Field(10.0, gt=0, description="Smallest search radius accepted, m")
    max_radius_m: float = Field(500.0, gt=0, description="Largest search radius accepted, m")
    max_window_s: float = Field(
        12 * 3600.0,
        gt=0,
        description="Longest window of a scene an investigator reports (API, rich import rows): "
        "12 h, as the UK crime-matching service allows",
    )
    low_precision_max_window_s: float = Field(
        32 * 86400.0,
        gt=0,
        description="Longest window of an imported month-only (low-precision) public crime",
    )
    crime_reference_pattern: str = Field(
        r"^(?=.*[0-9])[A-Za-z0-9][A-Za-z0-9 /._:-]{3,63}$",
        description="A plausible crime reference (regex, full match; set it to the force's "
        "format): default 4–64 characters, letters, digits and / . _ : - or space, a digit",
    )

    # --- Archiver-side consumer ---------------------------------------------------------
    rematch_delay_s: float = Field(
        10.0,
        ge=0,
        description="After a scene's first search and after a live match, re-match from the "
        "archive this much later (fixes archived after the search)",
    )
    poll_timeout_s: float = Field(0.2, gt=0, description="Scene consumer: longest poll wait")
    publish_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for Kafka to acknowledge a scene or an alert"
    )


def check_crime_reference(settings: SceneSettings, reference: str) -> str | None:
    """Return why ``reference`` is not a plausible crime reference, or None if it is."""
    if re.fullmatch(settings.crime_reference_pattern, reference) is None:
        return (
            f"crime_reference {reference!r} does not look like a crime reference "
            "(EM_SCENES_CRIME_REFERENCE_PATTERN)"
        )
    return None


@lru_cache(maxsize=1)
def get_scene_settings() -> SceneSettings:
    """Return the process-wide scene settings (read once from the environment)."""
    return SceneSettings()
