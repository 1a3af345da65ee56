"""Scene ids: the one derivation every entry point uses (API, CSV import), so the same crime
reported twice — by hand and in a file — is one scene, not two.

A derived id hashes the crime's identity, normalised first: the crime reference without any
whitespace, in upper case (``" cr/2026/10 0421 "`` is ``CR/2026/100421``); the place as exact
floats (``-0.0`` is ``0.0``); the window in UTC. A data.police.uk row is identified by its
Crime ID alone (its place is an anonymised map point and its window a whole month), without
whitespace, in lower case (the IDs are hex digests).

>>> from datetime import UTC, datetime
>>> t0, t1 = datetime(2026, 10, 20, 21, tzinfo=UTC), datetime(2026, 10, 21, 6, tzinfo=UTC)
>>> a = scene_id(" cr/2026/10/0421", 51.45, -0.98, t0, t1)
>>> a == scene_id("CR/2026/10/0421", 51.45, -0.98, t0, t1), a[:3]
(True, 'sc-')
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def reference_key(crime_reference: str) -> str:
    """Return the crime reference as it identifies a crime: no whitespace, upper case."""
    return "".join(crime_reference.split()).upper()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def scene_id(
    crime_reference: str, lat: float, lon: float, window_start: datetime, window_end: datetime
) -> str:
    """Return the derived id (``sc-`` + 24 hex) of a scene with an explicit window."""
    return "sc-" + _digest(
        reference_key(crime_reference),
        repr(float(lat) + 0.0),
        repr(float(lon) + 0.0),
        window_start.astimezone(UTC).isoformat(),
        window_end.astimezone(UTC).isoformat(),
    )


def police_uk_scene_id(crime_id: str) -> str:
    """Return the derived id (``pu-`` + 24 hex) of a data.police.uk crime (by Crime ID only)."""
    return "pu-" + _digest("".join(crime_id.split()).lower())


def crime_batch_scene_id(batch_id: str, crime_reference: str) -> str:
    """Return the derived id (``cb-`` + 24 hex) of a crime in a police crime batch.

    Identified by (batch id, crime reference) alone, so a resent batch with a corrected place
    or window updates the same scene instead of adding another.
    """
    return "cb-" + _digest("".join(batch_id.split()).upper(), reference_key(crime_reference))
