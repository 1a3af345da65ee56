"""Reported crime scenes on ``em.scenes`` (key = scene_id)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from msgspec import Meta, Struct

from em_service.contracts.types import AwareDatetime, Ident, Latitude, Longitude

CrimeType = Literal[
    "burglary_dwelling",
    "burglary_business",
    "robbery",
    "theft_from_person",
    "theft_from_vehicle",
    "other",
]
CRIME_TYPES: tuple[str, ...] = get_args(CrimeType)


class Scene(Struct, forbid_unknown_fields=True):
    """A crime scene: a place, a search radius and the window in which the crime happened."""

    scene_id: Ident
    crime_reference: Annotated[str, Meta(min_length=1, max_length=64)]
    crime_type: CrimeType
    lat: Latitude
    lon: Longitude
    window_start: AwareDatetime
    window_end: AwareDatetime
    reported_at: AwareDatetime
    radius_m: Annotated[float, Meta(ge=5.0, le=2000.0, description="Search radius, m")] = 100.0
    low_precision: bool = False
    source: Annotated[str, Meta(max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.window_end < self.window_start:
            raise ValueError("window_end must not be before window_start")
