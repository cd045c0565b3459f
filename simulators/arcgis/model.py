"""Services, layers and fields of the simulator, built from GeoJSON files; spatial references and their transforms."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "tests" / "simulators" / "data"
MANIFEST = "arcgis-services.json"

Kind = Literal["FeatureServer", "MapServer"]
GeometryType = Literal["point", "polygon", "polyline"]

ESRI_GEOMETRY_TYPES: dict[str, str] = {
    "point": "esriGeometryPoint",
    "polygon": "esriGeometryPolygon",
    "polyline": "esriGeometryPolyline",
}
# The shapely types a layer of each geometry type may hold (ArcGIS has no single/multi distinction).
_SHAPELY_TYPES: dict[str, tuple[str, ...]] = {
    "point": ("Point",),
    "polygon": ("Polygon", "MultiPolygon"),
    "polyline": ("LineString", "MultiLineString"),
}

FIELD_TYPES = (
    "esriFieldTypeOID",
    "esriFieldTypeString",
    "esriFieldTypeInteger",
    "esriFieldTypeSmallInteger",
    "esriFieldTypeDouble",
    "esriFieldTypeSingle",
    "esriFieldTypeDate",
)
NUMBER_TYPES = frozenset(
    {
        "esriFieldTypeOID",
        "esriFieldTypeInteger",
        "esriFieldTypeSmallInteger",
        "esriFieldTypeDouble",
        "esriFieldTypeSingle",
    }
)
INTEGER_TYPES = frozenset({"esriFieldTypeOID", "esriFieldTypeInteger", "esriFieldTypeSmallInteger"})

WGS84 = 4326
WEB_MERCATOR = 3857
# Esri's own code for Web Mercator, still what ArcGIS reports as `wkid` (with the EPSG code as `latestWkid`).
ESRI_WEB_MERCATOR = 102100
_ESRI_ALIASES = {ESRI_WEB_MERCATOR: WEB_MERCATOR, 102113: WEB_MERCATOR, 900913: WEB_MERCATOR}


def epsg_of(wkid: int) -> int:
    return _ESRI_ALIASES.get(wkid, wkid)


def spatial_reference(wkid: int) -> dict[str, int]:
    """The `spatialReference` object ArcGIS writes for a wkid: Web Mercator keeps its Esri code as `wkid`."""
    epsg = epsg_of(wkid)
    if epsg == WEB_MERCATOR:
        return {"wkid": ESRI_WEB_MERCATOR, "latestWkid": WEB_MERCATOR}
    return {"wkid": epsg, "latestWkid": epsg}


@lru_cache(maxsize=64)
def transformer(source: int, target: int) -> Transformer:
    """Built once per pair: a Transformer costs milliseconds to build and microseconds to use (protocols.md §3)."""
    return Transformer.from_crs(f"EPSG:{epsg_of(source)}", f"EPSG:{epsg_of(target)}", always_xy=True)


def known_wkid(wkid: int) -> bool:
    try:
        transformer(WGS84, wkid)
    except Exception:
        return False
    return True


def reproject(geometry: BaseGeometry, source: int, target: int) -> BaseGeometry:
    if epsg_of(source) == epsg_of(target):
        return geometry
    proj = transformer(source, target)

    def apply(coords: np.ndarray) -> np.ndarray:
        xs, ys = proj.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    return shapely.transform(geometry, apply)


def reproject_all(geometries: Sequence[BaseGeometry], source: int, target: int) -> list[BaseGeometry]:
    if epsg_of(source) == epsg_of(target):
        return list(geometries)
    return [reproject(geometry, source, target) for geometry in geometries]


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    alias: str = ""
    length: int | None = None

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r} (one of {', '.join(FIELD_TYPES)})")

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "alias": self.alias or self.name,
            "sqlType": "sqlTypeOther",
        }
        length = self.length
        if length is None and self.type == "esriFieldTypeString":
            length = 254
        if length is None and self.type == "esriFieldTypeDate":
            length = 8
        if length is not None:
            described["length"] = length
        described["nullable"] = self.type != "esriFieldTypeOID"
        described["editable"] = self.type != "esriFieldTypeOID"
        described["domain"] = None
        described["defaultValue"] = None
        return described


def epoch_ms(value: str | date | datetime) -> int:
    """ISO date or datetime to epoch milliseconds; a value without an offset is taken as UTC, as ArcGIS stores it."""
    if isinstance(value, str):
        value = _date(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def _date(text: str) -> date | datetime:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text)


def _coerce(field: Field, value: Any) -> Any:
    if value is None:
        return None
    if field.type == "esriFieldTypeDate":
        return epoch_ms(value) if not isinstance(value, int) else value
    if field.type in INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"field {field.name}: {value!r} is not an integer")
        return value
    if field.type in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"field {field.name}: {value!r} is not a number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"field {field.name}: {value!r} is not a string")
    return value


@dataclass
class Layer:
    """One layer: its features' attributes (dates in epoch ms) and geometries stored in `wkid`'s coordinates."""

    id: int
    name: str
    geometry_type: GeometryType
    fields: list[Field]
    object_id_field: str
    wkid: int
    records: list[dict[str, Any]]
    geometries: list[BaseGeometry]
    max_record_count: int | None = None
    supports_pagination: bool = True
    fields_by_lower: dict[str, Field] = field(init=False)
    geometry_array: np.ndarray = field(init=False)
    oids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.fields_by_lower = {item.name.lower(): item for item in self.fields}
        oid = self.fields_by_lower.get(self.object_id_field.lower())
        if oid is None or oid.type != "esriFieldTypeOID":
            raise ValueError(
                f"layer {self.name}: objectIdField {self.object_id_field} must be an esriFieldTypeOID field"
            )
        self.object_id_field = oid.name
        if len(self.records) != len(self.geometries):
            raise ValueError(f"layer {self.name}: as many geometries as records are needed")
        self.geometry_array = np.array(self.geometries, dtype=object)
        self.oids = [record[self.object_id_field] for record in self.records]
        if len(set(self.oids)) != len(self.oids):
            raise ValueError(f"layer {self.name}: object ids must be unique")

    @classmethod
    def from_geojson(
        cls,
        id: int,
        name: str,
        collection: Mapping[str, Any],
        *,
        fields: Mapping[str, str | Mapping[str, Any]],
        geometry_type: GeometryType,
        wkid: int = WGS84,
        object_id_field: str = "OBJECTID",
        max_record_count: int | None = None,
        supports_pagination: bool = True,
    ) -> Layer:
        """A layer from a WGS84 FeatureCollection; `fields` maps a name to an esri type or to {type, alias, length}.

        Properties not declared are dropped; object ids missing from the properties are numbered from 1 in file order;
        Date properties are ISO strings (UTC when they carry no offset).
        """
        declared = [_field(field_name, spec) for field_name, spec in fields.items()]
        if object_id_field not in fields:
            declared.insert(0, Field(object_id_field, "esriFieldTypeOID"))
        if geometry_type not in _SHAPELY_TYPES:
            raise ValueError(f"layer {name}: geometry type must be one of {', '.join(_SHAPELY_TYPES)}")
        if not known_wkid(wkid):
            raise ValueError(f"layer {name}: unknown spatial reference {wkid}")
        records: list[dict[str, Any]] = []
        geometries: list[BaseGeometry] = []
        for number, feature in enumerate(collection.get("features", []), start=1):
            geometry = shape(feature["geometry"])
            if geometry.geom_type not in _SHAPELY_TYPES[geometry_type]:
                raise ValueError(f"layer {name}: feature {number} is a {geometry.geom_type}, not a {geometry_type}")
            properties = feature.get("properties") or {}
            record = {item.name: _coerce(item, properties.get(item.name)) for item in declared}
            if record[object_id_field] is None:
                record[object_id_field] = number
            records.append(record)
            geometries.append(geometry)
        return cls(
            id,
            name,
            geometry_type,
            declared,
            object_id_field,
            wkid,
            records,
            reproject_all(geometries, WGS84, wkid),
            max_record_count,
            supports_pagination,
        )

    @property
    def esri_geometry_type(self) -> str:
        return ESRI_GEOMETRY_TYPES[self.geometry_type]

    def field(self, name: str) -> Field | None:
        return self.fields_by_lower.get(name.lower())

    def extent(self) -> dict[str, Any]:
        if self.geometries:
            xmin, ymin, xmax, ymax = shapely.total_bounds(self.geometry_array).tolist()
        else:
            xmin = ymin = xmax = ymax = math.nan
        return {
            "xmin": xmin,
            "ymin": ymin,
            "xmax": xmax,
            "ymax": ymax,
            "spatialReference": spatial_reference(self.wkid),
        }


def _field(name: str, spec: str | Mapping[str, Any]) -> Field:
    if isinstance(spec, str):
        return Field(name, spec)
    return Field(name, spec["type"], spec.get("alias", ""), spec.get("length"))


@dataclass
class Service:
    name: str
    kind: Kind
    layers: list[Layer]

    def __post_init__(self) -> None:
        if self.kind not in ("FeatureServer", "MapServer"):
            raise ValueError(f"service {self.name}: kind must be FeatureServer or MapServer")
        if len({layer.id for layer in self.layers}) != len(self.layers):
            raise ValueError(f"service {self.name}: layer ids must be unique")
        if not self.layers:
            raise ValueError(f"service {self.name}: at least one layer is needed")

    def layer(self, layer_id: int) -> Layer | None:
        return next((layer for layer in self.layers if layer.id == layer_id), None)

    @property
    def wkid(self) -> int:
        return self.layers[0].wkid


def load_services(path: str | Path = DATA_DIR) -> dict[str, Service]:
    """Services described by a manifest (`arcgis-services.json`, or a directory holding one), sources beside it.

    Manifest: `{"services": [{"name", "type": "FeatureServer"|"MapServer", "layers": [{"id", "name", "source":
    "file.geojson", "geometryType": "point"|"polygon"|"polyline", "wkid", "objectIdField", "maxRecordCount",
    "supportsPagination", "fields": {"NAME": "esriFieldTypeString" | {"type", "alias", "length"}}}]}]}`.
    """
    manifest_path = Path(path)
    if manifest_path.is_dir():
        manifest_path = manifest_path / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    services: dict[str, Service] = {}
    for spec in manifest["services"]:
        layers = [_load_layer(manifest_path.parent, layer) for layer in spec["layers"]]
        service = Service(spec["name"], spec["type"], layers)
        services[service.name] = service
    return services


def _load_layer(directory: Path, spec: Mapping[str, Any]) -> Layer:
    collection = json.loads((directory / spec["source"]).read_text(encoding="utf-8"))
    return Layer.from_geojson(
        int(spec["id"]),
        spec["name"],
        collection,
        fields=spec["fields"],
        geometry_type=spec["geometryType"],
        wkid=int(spec.get("wkid", WGS84)),
        object_id_field=spec.get("objectIdField", "OBJECTID"),
        max_record_count=spec.get("maxRecordCount"),
        supports_pagination=bool(spec.get("supportsPagination", True)),
    )


def points_layer(
    id: int,
    name: str,
    points: Iterable[tuple[float, float, Mapping[str, Any]]],
    *,
    fields: Mapping[str, str | Mapping[str, Any]],
    **options: Any,
) -> Layer:
    """Shorthand for tests: a point layer from `(lon, lat, properties)` triples."""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": dict(props)}
            for lon, lat, props in points
        ],
    }
    return Layer.from_geojson(id, name, collection, fields=fields, geometry_type="point", **options)
