"""Features as the GIS connectors hold them, whatever server they came from (WFS, OGC API, ArcGIS):
an id, a shapely geometry in WGS84 lon/lat, and the properties, validated once at the edge.

Answers are GeoJSON (RFC 7946: WGS84, lon/lat order) or data-source items whose ``id`` and
``text`` come from templates over the properties (:class:`passerelle.text.TextTemplate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from passerelle.text import TextTemplate

__all__ = ["Feature", "FeatureError", "feature_from_geojson", "to_feature_collection"]

COORDINATE_DIGITS = 7  # about a centimetre: more is noise from reprojection


class FeatureError(ValueError):
    """A feature that cannot be used (no geometry, an invalid one, coordinates out of range)."""


@dataclass(frozen=True, slots=True)
class Feature:
    id: str
    geometry: BaseGeometry
    properties: dict[str, Any]

    def geojson(self) -> dict[str, Any]:
        return {"type": "Feature", "id": self.id, "geometry": self.geometry_json(), "properties": self.properties}

    def item(self, id_template: TextTemplate | None, text_template: TextTemplate) -> dict[str, Any]:
        """The data-source form: ``id``, ``text`` and the properties (see :meth:`geometry_json`)."""
        values = {key: _as_text(value) for key, value in self.properties.items()}
        values.setdefault("id", self.id)
        ident = id_template.render(values) if id_template is not None else self.id
        return {**self.properties, "id": ident or self.id, "text": text_template.render(values) or ident or self.id}

    def geometry_json(self) -> dict[str, Any]:
        return shapely.geometry.mapping(shapely.set_precision(self.geometry, 10**-COORDINATE_DIGITS))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_wgs84(geometry: BaseGeometry) -> None:
    coords = shapely.get_coordinates(geometry)
    if not len(coords):
        raise FeatureError("the geometry is empty")
    if not (
        math.isfinite(coords.min())
        and math.isfinite(coords.max())
        and coords[:, 0].min() >= -180
        and coords[:, 0].max() <= 180
        and coords[:, 1].min() >= -90
        and coords[:, 1].max() <= 90
    ):
        raise FeatureError("coordinates are not WGS84 longitude/latitude (is the server answering another CRS?)")


def feature_from_geojson(data: Any, *, fallback_id: str = "") -> Feature:
    """A GeoJSON Feature (WGS84) as a :class:`Feature`; ``FeatureError`` says what is wrong with it.

    Invalid polygons (self-intersections, as servers sometimes send) are repaired with
    ``make_valid`` rather than refused: a point-in-polygon test on them would be wrong otherwise.
    """
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise FeatureError("not a GeoJSON Feature")
    raw_geometry = data.get("geometry")
    if not isinstance(raw_geometry, dict):
        raise FeatureError("the feature has no geometry")
    try:
        geometry = shapely.geometry.shape(raw_geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError) as error:
        raise FeatureError(f"the geometry cannot be read: {error}") from None
    _check_wgs84(geometry)
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    properties = data.get("properties") or {}
    if not isinstance(properties, dict):
        raise FeatureError("the feature's properties are not an object")
    ident = data.get("id")
    ident = str(ident) if ident not in (None, "") else fallback_id
    if not ident:
        raise FeatureError("the feature has no id")
    return Feature(ident, geometry, properties)


def to_feature_collection(features: list[Feature], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [f.geojson() for f in features], **members}
