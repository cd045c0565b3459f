"""An in-memory spatial index over a layer's features: which polygons contain a point (the
``sector`` question), which features lie in a box, which are nearest to a point.

Built once per refresh of a named query, then read-only, so lookups need no lock: a refresh
builds a new index and swaps it in one assignment. Geometries are WGS84 lon/lat; distances are
metres on the sphere (the nearest point of a geometry is found in degrees, then measured with
haversine, which is exact enough for "within 500 m" questions in a town).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from shapely import STRtree
from shapely.ops import nearest_points

from connectors.sig.layers.features import Feature

__all__ = ["FeatureIndex", "haversine_m"]

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


class FeatureIndex:
    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = list(features)
        self._geometries = np.array([f.geometry for f in self.features], dtype=object)
        self._tree = STRtree(self._geometries)
        # Point-in-polygon is answered by GEOS on prepared geometries: ten times faster on large polygons.
        shapely.prepare(self._geometries)
        self.by_id = {f.id: f for f in self.features}

    def __len__(self) -> int:
        return len(self.features)

    def containing_positions(self, lon: float, lat: float) -> list[int]:
        """Positions of the features whose geometry covers the point (a point on a shared border
        belongs to both), in layer order."""
        return sorted(self._tree.query(shapely.Point(lon, lat), predicate="covered_by").tolist())

    def containing(self, lon: float, lat: float) -> list[Feature]:
        return [self.features[i] for i in self.containing_positions(lon, lat)]

    def bbox_positions(self, west: float, south: float, east: float, north: float) -> list[int]:
        return sorted(self._tree.query(shapely.box(west, south, east, north), predicate="intersects").tolist())

    def in_bbox(self, west: float, south: float, east: float, north: float) -> list[Feature]:
        return [self.features[i] for i in self.bbox_positions(west, south, east, north)]

    def nearest(self, lon: float, lat: float, max_distance_m: float, limit: int) -> list[tuple[Feature, float]]:
        return [(self.features[i], d) for i, d in self.nearest_positions(lon, lat, max_distance_m, limit)]

    def nearest_positions(self, lon: float, lat: float, max_distance_m: float, limit: int) -> list[tuple[int, float]]:
        """Up to ``limit`` (position, metres) within ``max_distance_m`` metres of the point, nearest first
        (0 inside a polygon)."""
        point = shapely.Point(lon, lat)
        # A box in degrees that holds the circle: a degree of longitude shrinks with the latitude.
        dlat = max_distance_m / 111_320
        dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
        candidates = self._tree.query(shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        found = []
        for i in candidates.tolist():
            geometry = self._geometries[i]
            nearest_point = nearest_points(geometry, point)[0]
            distance = haversine_m(lon, lat, nearest_point.x, nearest_point.y)
            if distance <= max_distance_m:
                found.append((distance, i))
        found.sort()
        return [(i, round(distance, 1)) for distance, i in found[:limit]]
