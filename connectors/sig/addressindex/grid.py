"""A uniform lon/lat grid over points, and haversine distances, for reverse geocoding."""

from __future__ import annotations

import numpy as np

# About 550 m north-south: a handful of cells around a point hold its nearest addresses in a town.
CELL_DEGREES = 0.005
_OFFSET = 1 << 20
EARTH_RADIUS_M = 6_371_008.8


def cell_keys(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    ix = np.floor(np.asarray(lon) / CELL_DEGREES).astype(np.int64) + _OFFSET
    iy = np.floor(np.asarray(lat) / CELL_DEGREES).astype(np.int64) + _OFFSET
    return (ix << 22) | iy


def build_grid(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct cell keys, start of each cell in ``points`` (one more than keys), point ids by cell)."""
    keys = cell_keys(lon, lat)
    points = np.argsort(keys, kind="stable").astype(np.int32)
    keys = keys[points]
    # The keys are sorted already: cells start where the key changes (np.unique would sort them again).
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1 if len(keys) else np.empty(0, dtype=np.int64)
    starts = np.concatenate(([0], starts)) if len(keys) else starts
    return keys[starts], np.append(starts, len(points)).astype(np.int64), points


def haversine(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    lon1, lat1, lon2, lat2 = np.radians(lon), np.radians(lat), np.radians(lons), np.radians(lats)
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def nearby(
    keys: np.ndarray, starts: np.ndarray, points: np.ndarray, lon: float, lat: float, wanted: int, max_rings: int = 40
) -> np.ndarray:
    """Point ids in growing square rings of cells around (lon, lat), until ``wanted`` are found and one more
    ring has been added (a nearer point may sit just across a cell border)."""
    center = int(cell_keys(np.array([lon]), np.array([lat]))[0])
    cx, cy = center >> 22, center & ((1 << 22) - 1)
    found: list[np.ndarray] = []
    count, extra = 0, None
    for ring in range(max_rings + 1):
        cells = [
            ((cx + dx) << 22) | (cy + dy)
            for dx in range(-ring, ring + 1)
            for dy in range(-ring, ring + 1)
            if max(abs(dx), abs(dy)) == ring
        ]
        wanted_keys = np.array(cells, dtype=np.int64)
        positions = np.searchsorted(keys, wanted_keys)
        for key, pos in zip(wanted_keys, positions, strict=True):
            if pos < len(keys) and keys[pos] == key:
                found.append(points[starts[pos] : starts[pos + 1]])
                count += int(starts[pos + 1] - starts[pos])
        if count >= wanted and extra is None:
            extra = ring + 1
        if extra is not None and ring >= extra:
            break
    return np.concatenate(found) if found else np.empty(0, dtype=np.int32)
