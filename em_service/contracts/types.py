"""Constrained scalar types shared by the contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta

#: An identifier: device, offender, zone, scene… Printable, no spaces, at most 64 characters.
Ident = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
        description="Identifier: letters, digits, '.', '_', ':', '-'; at most 64 characters",
    ),
]
#: RFC 3339 date-time with an offset (naive times are rejected).
AwareDatetime = Annotated[
    datetime, Meta(tz=True, description="RFC 3339 date-time with offset, e.g. 2026-10-25T01:30:00Z")
]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0, description="WGS84 latitude, degrees")]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0, description="WGS84 longitude, degrees")]
#: Local wall-clock time ``HH:MM`` (24 h).
LocalTime = Annotated[
    str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time HH:MM (24 h)")
]
Metres = Annotated[float, Meta(ge=0.0, le=1_000_000.0, description="Distance in metres")]
