"""Lettered Ordnance Survey National Grid references (``TQ 3004 8012``) → easting/northing.

The OS scheme (Ordnance Survey, *A Guide to Coordinate Systems in Great Britain*, §"The National
Grid reference system", and OS's *Using the National Grid*): the grid's false origin is the
south-west corner of square SV. The letters A–Z without I are laid out five by five, A at the
north-west, reading west to east, then north to south::

    A B C D E
    F G H J K
    L M N O P
    Q R S T U
    V W X Y Z

The first letter names a 500 km square, S being the one at the false origin (so T is 500 km
east of it, N 500 km north, O, H and J beyond); the second names a 100 km square within it, in
the same layout. The grid covers 700 km east by 1300 km north of the false origin, so its 91
100 km squares run from SV (0, 0) to JM (600 km, 1200 km): first letters S, T, N, O, H, J only,
and in T, O and J only the two western columns; in H and J only the three southern rows. The
digits that follow are the easting then the northing within the 100 km square, the same number
of each (1 to 5): one each names a 10 km square, five each a 1 m square.

Pure: no I/O; converting the result to latitude/longitude is :mod:`geofences.national_grid`'s.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: The 25 grid letters (no I) in OS's layout, row by row from the north-west corner.
LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
#: The National Grid's extent east and north of the false origin (m).
GRID_EAST_M = 700_000
GRID_NORTH_M = 1_300_000
_SHAPE = re.compile(r"([A-Z]{2})\s*([0-9\s]*)")


class BadGridRef(ValueError):
    """Text that is not a lettered OS National Grid reference; the message says why."""


class GridRef(NamedTuple):
    """The square a grid reference names: its centre (OSGB36 metres) and its side (m)."""

    easting_m: float
    northing_m: float
    precision_m: float


def square_origin(letters: str) -> tuple[int, int]:
    """Return the (easting, northing) in metres of the south-west corner of a 100 km square.

    >>> square_origin("TQ"), square_origin("SV"), square_origin("HP")
    ((500000, 100000), (0, 0), (400000, 1200000))
    """
    pair = letters.upper()
    if len(pair) != 2 or any(c not in LETTERS for c in pair):
        raise BadGridRef(f"{letters!r} is not two grid letters (A to Z without I)")
    big, small = LETTERS.index(pair[0]), LETTERS.index(pair[1])
    # 500 km squares: S (column 2, row 3 from the top) is at the false origin.
    e = (big % 5 - 2) * 500_000 + (small % 5) * 100_000
    n = (3 - big // 5) * 500_000 + (4 - small // 5) * 100_000
    if not (0 <= e < GRID_EAST_M and 0 <= n < GRID_NORTH_M):
        raise BadGridRef(f"{pair} is not a 100 km square of the National Grid (SV to JM)")
    return e, n


def parse_os_grid_ref(text: str) -> GridRef:
    """Return the centre (easting, northing) and precision of a lettered OS grid reference.

    Case and spaces do not matter, but if the figures are split, the two halves must be the
    same length (``TQ 30 8012`` is refused rather than read as ``TQ 308 012``). The centre is
    the south-west corner of the square named plus half its side, the precision.

    Parameters
    ----------
    text
        Two letters and 2, 4, 6, 8 or 10 figures, e.g. ``"TQ 30 80"``, ``"tq3080"``,
        ``"TQ 30040 80120"``.

    Returns
    -------
    GridRef
        ``(easting_m, northing_m, precision_m)``: OSGB36 metres; 10 000 m for one figure each
        down to 1 m for five.

    Raises
    ------
    BadGridRef
        Not two grid letters of a National Grid square followed by an even number of figures.

    Examples
    --------
    >>> parse_os_grid_ref("TQ 30 80")
    GridRef(easting_m=530500.0, northing_m=180500.0, precision_m=1000.0)
    >>> parse_os_grid_ref("nn1667171263")
    GridRef(easting_m=216671.5, northing_m=771263.5, precision_m=1.0)
    """
    found = _SHAPE.fullmatch(text.strip().upper())
    if found is None:
        raise BadGridRef("it is not two letters followed by figures")
    letters, figures = found.groups()
    e0, n0 = square_origin(letters)
    halves = figures.split()
    if len(halves) == 2 and len(halves[0]) != len(halves[1]):
        raise BadGridRef("the easting and northing figures are not the same length")
    if len(halves) > 2:
        raise BadGridRef("the figures are in more than two groups")
    digits = "".join(halves)
    if len(digits) % 2 or not 2 <= len(digits) <= 10:
        raise BadGridRef(f"it has {len(digits)} figures (give 2, 4, 6, 8 or 10)")
    k = len(digits) // 2
    precision = 10.0 ** (5 - k)
    e = e0 + int(digits[:k]) * precision + precision / 2
    n = n0 + int(digits[k:]) * precision + precision / 2
    return GridRef(e, n, precision)
