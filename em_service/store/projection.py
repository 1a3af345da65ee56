"""WGS84 lon/lat → projected metres for the archive.

The archive uses the very transformation the zones and scenes use
(:func:`geofences.projection.get_projector`: one fixed offline operation per CRS), so a stored
fix and a scene or zone are always compared in the same metres.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geofences.projection import get_projector


def project(
    lon: ArrayLike, lat: ArrayLike, crs: str = "EPSG:27700"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(x, y)`` metres in ``crs`` for WGS84 ``lon``/``lat`` degrees (scalars or arrays).

    >>> x, y = project(-0.97, 51.45)
    >>> round(float(x), -3), round(float(y), -3)
    (472000.0, 173000.0)
    """
    x, y = get_projector(crs).to_xy(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, float), np.asarray(y, float)
