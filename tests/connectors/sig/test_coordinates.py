"""Lambert-93 ↔ WGS84 (and Web Mercator) for the GIS connectors, against protocols.md §3's values."""

from __future__ import annotations

import pytest
import shapely

from connectors.sig.coordinates import check_lon_lat, lambert93_to_wgs84, reproject, wgs84_to_lambert93


def test_the_ban_example_both_ways():
    assert lambert93_to_wgs84(651500.23, 6865844.9) == pytest.approx((2.338562, 48.890787), abs=1e-6)
    assert wgs84_to_lambert93(2.3488, 48.8534) == pytest.approx((652216.63, 6861681.5), abs=0.01)


def test_geometries_are_reprojected_in_one_call():
    point = reproject(shapely.Point(2.3488, 48.8534), 4326, 3857)
    assert (point.x, point.y) == pytest.approx((261467.22, 6250022.95), abs=0.01)
    square = shapely.box(2.3, 48.8, 2.4, 48.9)
    back = reproject(reproject(square, 4326, 2154), 2154, 4326)
    assert back.equals_exact(square, 1e-9)
    assert reproject(square, 4326, 4326) is square


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lambert93_to_wgs84(2.34, 48.85), "outside Lambert-93"),  # a lon/lat pair given as x/y
        (lambda: wgs84_to_lambert93(-60.0, 14.6), "outside Lambert-93"),  # Martinique has its own projection
        (lambda: check_lon_lat(200, 0), "not a longitude/latitude"),
        (lambda: check_lon_lat(float("nan"), 0), "not a longitude/latitude"),
    ],
)
def test_points_outside_the_projection_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
