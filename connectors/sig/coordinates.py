"""Coordinates the GIS connectors take: WGS84 lon/lat, and Lambert-93 x/y (EPSG:2154) through pyproj.

One ``Transformer`` per direction, built once (building one costs about a millisecond, a
transformation microseconds), with ``always_xy=True`` so that the order is always
(longitude, latitude) / (x, y) whatever the CRS's official axis order (protocols.md §3).
Points outside Lambert-93's area of use (metropolitan France and Corsica) are refused
rather than projected into nonsense.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

__all__ = [
    "L93_BOUNDS",
    "WGS84_L93_AREA",
    "check_lon_lat",
    "lambert93_to_wgs84",
    "reproject",
    "transformer",
    "wgs84_to_lambert93",
]

# EPSG:2154's area of use, in degrees (west, south, east, north) and in metres (its projected bounds).
WGS84_L93_AREA = (-9.86, 41.15, 10.38, 51.56)
L93_BOUNDS = (-378306.0, 6005294.0, 1320650.0, 7235613.0)


@cache
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def transformer(source: int, target: int) -> Transformer:
    """The cached (x, y) → (x, y) transformer between two EPSG codes, axis order always x/lon first."""
    return _transformer(f"EPSG:{source}", f"EPSG:{target}")


def reproject(geometry: BaseGeometry, source: int, target: int) -> BaseGeometry:
    """A shapely geometry from one EPSG code to another (one vectorised call); ValueError when a point
    cannot be projected (outside the target's domain: PROJ answers infinities)."""
    if source == target:
        return geometry
    forward = transformer(source, target)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = forward.transform(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    moved = shapely.transform(geometry, move)
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        raise ValueError(f"a point cannot be projected from EPSG:{source} to EPSG:{target}")
    return moved


def check_lon_lat(lon: float, lat: float) -> None:
    """ValueError unless (lon, lat) is a point on Earth."""
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"({lon}, {lat}) is not a longitude/latitude pair (lon -180..180, lat -90..90)")


def lambert93_to_wgs84(x: float, y: float) -> tuple[float, float]:
    """(lon, lat) of a Lambert-93 point; ValueError outside the projection's area."""
    west, south, east, north = L93_BOUNDS
    if not (math.isfinite(x) and math.isfinite(y)) or not (west <= x <= east and south <= y <= north):
        raise ValueError(
            f"({x}, {y}) is outside Lambert-93's area (x {west:.0f}..{east:.0f}, y {south:.0f}..{north:.0f}); "
            "is it a lon/lat pair or another projection?"
        )
    lon, lat = _transformer("EPSG:2154", "EPSG:4326").transform(x, y)
    return round(lon, 7), round(lat, 7)


def wgs84_to_lambert93(lon: float, lat: float) -> tuple[float, float]:
    """(x, y) in Lambert-93 of a lon/lat point; ValueError outside the projection's area."""
    west, south, east, north = WGS84_L93_AREA
    check_lon_lat(lon, lat)
    if not (west <= lon <= east and south <= lat <= north):
        raise ValueError(f"({lon}, {lat}) is outside Lambert-93's area (metropolitan France and Corsica)")
    x, y = _transformer("EPSG:4326", "EPSG:2154").transform(lon, lat)
    return round(x, 2), round(y, 2)
