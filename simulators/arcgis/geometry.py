"""Esri JSON geometries in and out, and the query's spatial filter."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .model import epsg_of, known_wkid, reproject

GEOMETRY_TYPES = (
    "esriGeometryEnvelope",
    "esriGeometryPoint",
    "esriGeometryMultipoint",
    "esriGeometryPolyline",
    "esriGeometryPolygon",
)
# "Contains": the query geometry contains the feature; "Within": the query geometry is within the feature (the
# esriSpatialRelEnum of the ArcGIS SOAP/REST reference: "Query Geometry Contains Target Geometry", "Query Geometry is
# Within Target Geometry").
SPATIAL_RELATIONS: dict[str, Callable[[BaseGeometry, np.ndarray], np.ndarray]] = {
    "esriSpatialRelIntersects": shapely.intersects,
    "esriSpatialRelContains": shapely.contains,
    "esriSpatialRelWithin": shapely.within,
    "esriSpatialRelTouches": shapely.touches,
    "esriSpatialRelCrosses": shapely.crosses,
    "esriSpatialRelOverlaps": shapely.overlaps,
    "esriSpatialRelEnvelopeIntersects": lambda query, geometries: shapely.intersects(
        shapely.envelope(query), shapely.envelope(geometries)
    ),
    "esriSpatialRelIndexIntersects": lambda query, geometries: shapely.intersects(
        shapely.envelope(query), shapely.envelope(geometries)
    ),
}


class GeometryError(ValueError):
    """A `geometry`, `inSR` or `outSR` the server would refuse; `parameter` names it."""

    def __init__(self, parameter: str) -> None:
        super().__init__(parameter)
        self.parameter = parameter


def parse_wkid(text: str, parameter: str) -> int:
    """`4326`, `102100` or `{"wkid": 4326}` (latestWkid taken when given too)."""
    text = text.strip()
    try:
        if text.startswith("{"):
            value = json.loads(text)
            wkid = int(value.get("latestWkid") or value["wkid"])
        else:
            wkid = int(text)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GeometryError(parameter) from None
    if not known_wkid(wkid):
        raise GeometryError(parameter)
    return wkid


def _numbers(values: Any, count: int | None = None) -> list[float]:
    if not isinstance(values, list | tuple) or (count is not None and len(values) < count):
        raise ValueError("not a coordinate")
    numbers = [float(value) for value in values[: count or len(values)]]
    if not all(math.isfinite(number) for number in numbers):
        raise ValueError("not a finite coordinate")
    return numbers


def _polygon_from_rings(rings: list[Any]) -> BaseGeometry:
    """Esri rings: clockwise outer rings, counter-clockwise holes, in any order."""
    outers: list[Polygon] = []
    holes: list[Polygon] = []
    for ring in rings:
        points = [_numbers(point, 2) for point in ring]
        if len(points) < 3:
            raise ValueError("a ring needs three points")
        polygon = Polygon(points)
        if not polygon.is_valid:
            polygon = shapely.make_valid(polygon)
        (holes if shapely.is_ccw(shapely.LinearRing(points)) else outers).append(polygon)
    if not outers:
        # A lone counter-clockwise ring is a GeoJSON-minded client's outer ring: ArcGIS would reorient it too.
        outers, holes = holes, []
    result = shapely.union_all(outers)
    if holes:
        result = result.difference(shapely.union_all(holes))
    return result


def parse_geometry(text: str, geometry_type: str, in_wkid: int | None) -> tuple[BaseGeometry, int | None]:
    """The `geometry` parameter read as `geometry_type`; returns it with the wkid its JSON carries, if any."""
    text = text.strip()
    wkid: int | None = None
    try:
        if text.startswith("{"):
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError("not an object")
            if isinstance(value.get("spatialReference"), dict):
                wkid = parse_wkid(json.dumps(value["spatialReference"]), "geometry")
            geometry = _from_json(value, geometry_type)
        else:
            numbers = _numbers(text.split(","))
            if geometry_type == "esriGeometryEnvelope" and len(numbers) == 4:
                xmin, ymin, xmax, ymax = numbers
                geometry = box(min(xmin, xmax), min(ymin, ymax), max(xmin, xmax), max(ymin, ymax))
            elif geometry_type == "esriGeometryPoint" and len(numbers) == 2:
                geometry = Point(numbers)
            else:
                raise ValueError("simple syntax is xmin,ymin,xmax,ymax for an envelope, x,y for a point")
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException):
        raise GeometryError("geometry") from None
    if geometry.is_empty:
        raise GeometryError("geometry")
    return geometry, wkid if wkid is not None else in_wkid


def _from_json(value: dict[str, Any], geometry_type: str) -> BaseGeometry:
    if geometry_type == "esriGeometryEnvelope":
        xmin, ymin, xmax, ymax = (float(value[key]) for key in ("xmin", "ymin", "xmax", "ymax"))
        return box(min(xmin, xmax), min(ymin, ymax), max(xmin, xmax), max(ymin, ymax))
    if geometry_type == "esriGeometryPoint":
        return Point(float(value["x"]), float(value["y"]))
    if geometry_type == "esriGeometryMultipoint":
        return MultiPoint([_numbers(point, 2) for point in value["points"]])
    if geometry_type == "esriGeometryPolyline":
        return MultiLineString([[_numbers(point, 2) for point in path] for path in value["paths"]])
    if geometry_type == "esriGeometryPolygon":
        return _polygon_from_rings(value["rings"])
    raise ValueError(geometry_type)


def to_storage(geometry: BaseGeometry, source: int, target: int) -> BaseGeometry:
    """Reprojects a query geometry; edges are densified first, since a straight edge in one system bends in another."""
    if epsg_of(source) == epsg_of(target):
        return geometry
    if geometry.geom_type in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
        xmin, ymin, xmax, ymax = geometry.bounds
        step = max(xmax - xmin, ymax - ymin) / 32
        if step > 0:
            geometry = shapely.segmentize(geometry, step)
    projected = reproject(geometry, source, target)
    if not np.isfinite(shapely.get_coordinates(projected)).all():
        raise GeometryError("geometry")
    return projected


def esri_json(geometry: BaseGeometry) -> dict[str, Any]:
    """ArcGIS's geometry objects: points `{x, y}`, lines `{paths}`, polygons `{rings}` with clockwise outer rings."""
    if isinstance(geometry, Point):
        return {"x": geometry.x, "y": geometry.y}
    if isinstance(geometry, LineString | MultiLineString):
        lines = [geometry] if isinstance(geometry, LineString) else list(geometry.geoms)
        return {"paths": [[list(point) for point in line.coords] for line in lines]}
    polygons = [geometry] if isinstance(geometry, Polygon) else list(getattr(geometry, "geoms", []))
    rings: list[list[list[float]]] = []
    for polygon in polygons:
        # sign=-1: exterior clockwise and holes counter-clockwise, the reverse of GeoJSON's right-hand rule.
        oriented = orient(polygon, sign=-1.0)
        rings.append([list(point) for point in oriented.exterior.coords])
        rings.extend([list(point) for point in interior.coords] for interior in oriented.interiors)
    return {"rings": rings}


def geojson(geometry: BaseGeometry) -> dict[str, Any]:
    """RFC 7946 geometry: counter-clockwise exterior rings."""
    if isinstance(geometry, Polygon):
        geometry = orient(geometry, sign=1.0)
    elif geometry.geom_type == "MultiPolygon":
        geometry = shapely.MultiPolygon([orient(part, sign=1.0) for part in geometry.geoms])
    return json.loads(json.dumps(mapping(geometry)))
