"""WGS84 lon/lat → projected metres for the archive (one small function, easy to swap).

Uses pyproj directly with ``always_xy`` (input ``lon, lat``; output ``x`` easting, ``y``
northing, metres), one cached transformer per CRS. When ``geofences`` grows its shared
projector, replace the body of :func:`project` with it so zones and the archive agree.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer


@lru_cache(maxsize=4)
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def project(
    lon: ArrayLike, lat: ArrayLike, crs: str = "EPSG:27700"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(x, y)`` metres in ``crs`` for WGS84 ``lon``/``lat`` degrees (scalars or arrays).

    >>> x, y = project(-0.97, 51.45)
    >>> round(float(x), -3), round(float(y), -3)
    (472000.0, 173000.0)
    """
    x, y = _transformer(crs).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, float), np.asarray(y, float)
