"""THE spatio-temporal index of archived fixes — the one module that knows how it works.

Design: a portable grid cell plus time B-tree. Every fix gets ``cell``, the id of the
``CELL_M`` × ``CELL_M`` square of the projected grid it falls in; the composite index
``(cell, ts_ms)`` then answers "fixes in these cells between t0 and t1" with one range seek per
cell. :func:`fixes_near` asks for the cells that touch the circle, and refines the candidates
by exact distance in projected metres. Plain integers and a B-tree: the same SQL runs on SQLite
and PostgreSQL (no R*Tree, no PostGIS), and inserts stay cheap.

``CELL_M`` is part of the stored data: changing it needs a migration that recomputes ``cell``.
250 m keeps a typical crime-scene query (radius ≤ 250 m) to at most 4–9 cells while a cell holds
few fixes of any one day.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from em_service.store.models import Fix
from em_service.store.types import to_ms

CELL_M = 250.0
_OFFSET = 1 << 25  # cell index offset: covers ±8,000 km of grid in either axis
_SHIFT = 1 << 26
_CELLS_PER_QUERY = 500
MAX_RADIUS_M = 50_000.0

#: The columns a search reads: the cell index's INCLUDE list on PostgreSQL (migration 0010).
COVERED = (Fix.device_id, Fix.ts_ms, Fix.seq, Fix.x_m, Fix.y_m)


def cell_of(x_m: ArrayLike, y_m: ArrayLike) -> NDArray[np.int64]:
    """Return the cell id(s) of projected point(s) ``x_m``, ``y_m`` (metres).

    >>> int(cell_of(100.0, 100.0)) == int(cell_of(249.9, 0.0))
    True
    """
    ix = np.floor(np.asarray(x_m, float) / CELL_M).astype(np.int64) + _OFFSET
    iy = np.floor(np.asarray(y_m, float) / CELL_M).astype(np.int64) + _OFFSET
    return ix * _SHIFT + iy


def cells_near(x_m: float, y_m: float, radius_m: float) -> list[int]:
    """Return the ids of every cell that has a point within ``radius_m`` of (``x_m``, ``y_m``)."""
    ix0, ix1 = math.floor((x_m - radius_m) / CELL_M), math.floor((x_m + radius_m) / CELL_M)
    iy0, iy1 = math.floor((y_m - radius_m) / CELL_M), math.floor((y_m + radius_m) / CELL_M)
    cells = []
    for ix in range(ix0, ix1 + 1):
        dx = max(ix * CELL_M - x_m, 0.0, x_m - (ix + 1) * CELL_M)
        for iy in range(iy0, iy1 + 1):
            dy = max(iy * CELL_M - y_m, 0.0, y_m - (iy + 1) * CELL_M)
            if dx * dx + dy * dy <= radius_m * radius_m:
                cells.append((ix + _OFFSET) * _SHIFT + iy + _OFFSET)
    return cells


class Near(NamedTuple):
    """One device's fixes found near a point, as arrays in time order."""

    ts_ms: NDArray[np.int64]
    #: The reading's ``seq``; ``-1`` where the reading had none.
    seq: NDArray[np.int64]
    #: Distance from the searched point, metres.
    distance_m: NDArray[np.float64]


def fixes_near(
    session: Session,
    x: float,
    y: float,
    radius_m: float,
    t0: datetime,
    t1: datetime,
) -> dict[str, Near]:
    """Return fixes within ``radius_m`` metres of projected (``x``, ``y``) with ``t0 <= ts <= t1``.

    Parameters
    ----------
    session
        An open session.
    x, y
        Easting and northing in the projected CRS (``settings.projected_crs``), metres.
    radius_m
        Search radius in metres, ``0 < radius_m <= MAX_RADIUS_M``.
    t0, t1
        Aware datetimes bounding event time, inclusive.

    Returns
    -------
    dict
        ``device_id`` → its fixes near the point (:class:`Near`, in time order). A fix's own
        ``accuracy_m`` is not added: callers wanting "possibly within R" pass a larger radius
        and filter. Only the columns the cell index covers are read, so PostgreSQL answers
        from the index alone (migration 0010) instead of visiting one heap page per fix.
    """
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise ValueError(f"radius_m must be in (0, {MAX_RADIUS_M:.0f}] m, got {radius_m}")
    lo, hi = to_ms(t0), to_ms(t1)
    cells = cells_near(x, y, radius_m)
    r2 = radius_m * radius_m
    rows: list = []
    conn = session.connection()
    for start in range(0, len(cells), _CELLS_PER_QUERY):
        stmt = select(*COVERED).where(
            Fix.cell.in_(cells[start : start + _CELLS_PER_QUERY]),
            Fix.ts_ms.between(lo, hi),
            (Fix.x_m - x) * (Fix.x_m - x) + (Fix.y_m - y) * (Fix.y_m - y) <= r2,
        )
        rows.extend(conn.execute(stmt).tuples())
    if not rows:
        return {}
    rows.sort(key=lambda r: (r[0], r[1]))
    devices = [r[0] for r in rows]
    num = np.array([r[1:] for r in rows], dtype=np.float64)
    ts, seq = num[:, 0].astype(np.int64), num[:, 1].astype(np.int64)
    dist = np.hypot(num[:, 2] - x, num[:, 3] - y)
    out, a = {}, 0
    for b in range(1, len(rows) + 1):
        if b == len(rows) or devices[b] != devices[a]:
            out[devices[a]] = Near(ts[a:b], seq[a:b], dist[a:b])
            a = b
    return out
