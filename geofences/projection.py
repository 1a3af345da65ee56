"""WGS84 ⇄ projected metres, one deterministic pyproj operation per CRS, never the network.

Coordinates are ``(x, y)`` = ``(lon, lat)`` on the WGS84 side (``always_xy=True``) and
``(easting, northing)`` in metres on the projected side.

PROJ normally picks the *best* operation per point. For British National Grid the best one uses
the OSTN15 grid, which is not installed here; PROJ would warn once and then pick, point by point,
among Helmert fits whose areas of use differ — two nearby points could be transformed by different
operations, metres apart. :func:`get_projector` instead chooses the most accurate operation that is
*available offline* once, and uses it for every zone and every fix (for EPSG:27700 that is the
7-parameter Helmert "OSGB36 to WGS 84 (6)", about 2 m absolute). Zones and fixes share it, so
relative distances — all that verdicts use — are unaffected. The network is disabled before any
transformer is built, and the "grid not available" warning is silenced only around that build.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from pyproj.transformer import Transformer, TransformerGroup

from geofences.errors import GeometryError

WGS84 = "EPSG:4326"


@dataclass(frozen=True, slots=True)
class Projector:
    """A fixed WGS84 ⇄ projected-metres transformation.

    Attributes
    ----------
    crs
        Target CRS as given (e.g. ``"EPSG:27700"``).
    forward, inverse
        pyproj transformers lon/lat → x/y and back (``always_xy``).
    description
        The operation in use, e.g. ``"… Inverse of OSGB36 to WGS 84 (6) + British National Grid"``.
    accuracy_m
        PROJ's stated accuracy of the operation, metres (``-1`` if unknown).
    best_available
        False when a more accurate operation exists but needs a grid that is not installed.
    area_of_use
        ``(west, south, east, north)`` degrees where the CRS and operation are valid.
    """

    crs: str
    forward: Transformer
    inverse: Transformer
    description: str
    accuracy_m: float
    best_available: bool
    area_of_use: tuple[float, float, float, float]

    def to_xy(
        self, lon: np.ndarray | float, lat: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x_m, y_m)`` for WGS84 ``lon``/``lat`` degrees (arrays or scalars)."""
        x, y = self.forward.transform(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, np.float64)
        )
        return np.asarray(x), np.asarray(y)

    def to_lonlat(
        self, x: np.ndarray | float, y: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lon, lat)`` degrees for projected ``x``/``y`` metres."""
        lon, lat = self.inverse.transform(
            np.asarray(x, dtype=np.float64), np.asarray(y, np.float64)
        )
        return np.asarray(lon), np.asarray(lat)

    def in_area(self, lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
        """Return True where ``lon``/``lat`` lie in the area of use."""
        w, s, e, n = self.area_of_use
        lon, lat = np.asarray(lon), np.asarray(lat)
        return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)

    def to_xy_checked(
        self, lon: np.ndarray | float, lat: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(x_m, y_m, ok)``: :meth:`to_xy` and where the point is *projectable*.

        ``ok`` is False where ``lon``/``lat`` lie outside the area of use or the projection is
        not finite (e.g. lat 0, lon 88 gives ``inf`` in EPSG:27700). The one check of fixes for
        the worker's intake and the archiver: such a fix never reaches a rule or the archive.
        """
        x, y = self.to_xy(lon, lat)
        ok = self.in_area(lon, lat) & np.isfinite(x) & np.isfinite(y)
        return x, y, ok


def _best_offline(src: str, dst: str) -> tuple[Transformer, bool]:
    with warnings.catch_warnings():
        # "Best transformation is not available due to missing Grid(...)": expected offline.
        warnings.filterwarnings("ignore", message="Best transformation is not available")
        group = TransformerGroup(src, dst, always_xy=True, allow_ballpark=False)
    if group.transformers:
        return group.transformers[0], group.best_available
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Best transformation is not available")
        return Transformer.from_crs(src, dst, always_xy=True), False


@lru_cache(maxsize=8)
def get_projector(crs: str = "EPSG:27700") -> Projector:
    """Return the cached :class:`Projector` for ``crs`` (a projected CRS in metres).

    Raises
    ------
    GeometryError
        If ``crs`` is unknown, not projected, or not in metres.

    Examples
    --------
    >>> p = get_projector("EPSG:27700")
    >>> x, y = p.to_xy(-0.1276, 51.5072)
    >>> round(float(x)), round(float(y))
    (530043, 180358)
    """
    pyproj.network.set_network_enabled(False)
    try:
        target = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise GeometryError(f"unknown CRS {crs!r}: {exc}") from exc
    units = {axis.unit_name for axis in target.axis_info}
    if not target.is_projected or units != {"metre"}:
        raise GeometryError(f"CRS {crs!r} must be projected with axes in metres (got {units})")
    forward, best = _best_offline(WGS84, crs)
    inverse, _ = _best_offline(crs, WGS84)
    bounds = [target.area_of_use.bounds] if target.area_of_use else []
    if forward.area_of_use is not None:
        bounds.append(forward.area_of_use.bounds)
    if bounds:
        b = np.array(bounds)
        area = (
            float(b[:, 0].max()),
            float(b[:, 1].max()),
            float(b[:, 2].min()),
            float(b[:, 3].min()),
        )
    else:
        area = (-180.0, -90.0, 180.0, 90.0)
    return Projector(
        crs=crs,
        forward=forward,
        inverse=inverse,
        description=forward.description,
        accuracy_m=float(forward.accuracy),
        best_available=best,
        area_of_use=area,
    )


pyproj.network.set_network_enabled(False)
