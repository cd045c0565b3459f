"""The spatial index of a layer: containing polygons, boxes, nearest features with metres."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod

from connectors.sig.layers.features import Feature
from connectors.sig.layers.spatialindex import FeatureIndex, haversine_m


def box(ident: str, west: float, south: float, east: float, north: float) -> Feature:
    return Feature(ident, shapely.box(west, south, east, north), {"name": ident})


@pytest.fixture
def index() -> FeatureIndex:
    # Two sectors side by side around Gap, and a point (a container) to the east.
    return FeatureIndex(
        [
            box("ouest", 6.06, 44.54, 6.08, 44.56),
            box("est", 6.08, 44.54, 6.10, 44.56),
            Feature("pav-1", shapely.Point(6.11, 44.55), {"name": "pav-1"}),
        ]
    )


def test_the_polygon_containing_a_point(index):
    assert [f.id for f in index.containing(6.07, 44.55)] == ["ouest"]
    assert [f.id for f in index.containing(6.09, 44.55)] == ["est"]
    assert index.containing(6.5, 44.55) == []
    # On the shared border: both sectors, in a stable order.
    assert [f.id for f in index.containing(6.08, 44.55)] == ["ouest", "est"]


def test_features_in_a_box(index):
    assert [f.id for f in index.in_bbox(6.085, 44.545, 6.12, 44.56)] == ["est", "pav-1"]
    assert index.in_bbox(7, 45, 7.1, 45.1) == []


def test_nearest_features_in_metres(index):
    found = index.nearest(6.105, 44.55, max_distance_m=1000, limit=5)
    assert [f.id for f, _ in found] == ["pav-1", "est"]
    pav_distance = found[0][1]
    assert pav_distance == pytest.approx(haversine_m(6.105, 44.55, 6.11, 44.55), abs=0.1)
    assert 390 < pav_distance < 400  # 0.005° of longitude at 44.55°N
    assert found[1][1] == pytest.approx(haversine_m(6.105, 44.55, 6.10, 44.55), abs=0.1)
    # Inside a polygon the distance is 0; the limit and the distance cut.
    assert index.nearest(6.07, 44.55, 10, 5)[0] == (index.by_id["ouest"], 0.0)
    assert [f.id for f, _ in index.nearest(6.105, 44.55, 1000, 1)] == ["pav-1"]
    assert index.nearest(6.105, 44.55, 100, 5) == []


def test_haversine_agrees_with_the_ellipsoid():
    # Paris (Notre-Dame) to Gap: the sphere is within 0.5 % of WGS84's ellipsoid (pyproj's Geod).
    _, _, ellipsoid = Geod(ellps="WGS84").inv(2.3499, 48.8530, 6.0786, 44.5594)
    assert haversine_m(2.3499, 48.8530, 6.0786, 44.5594) == pytest.approx(ellipsoid, rel=0.005)
