"""The endpoints every GIS layer connector answers (``opengis``, ``arcgis``), whatever the protocol
of its server: a subclass only says how to build its :class:`~connectors.sig.layers.provider.Provider`.

- ``layers``: what the server offers;
- ``features``: features of a layer by box, point and property filters, fetched from the server
  at each call (GeoJSON, or the data-source form with text templates);
- ``query/<name>/``: a named query's features, from the hub's copy (see :mod:`.namedqueries`);
- ``sector``: the polygons of a named query containing an address or a point, in one call;
- ``nearest``: the features of a named query nearest to a point.

Coordinates given and answered are WGS84 lon/lat unless said otherwise (``bbox_crs``, ``x``/``y``
in Lambert-93); answers are GeoJSON in WGS84 (RFC 7946).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel

from connectors.sig.coordinates import check_lon_lat, lambert93_to_wgs84, transformer
from connectors.sig.layers.config import LayersConfig
from connectors.sig.layers.features import Feature, to_feature_collection
from connectors.sig.layers.namedqueries import NamedQueries
from connectors.sig.layers.provider import LayerQuery, Provider
from passerelle import (
    APIError,
    Connector,
    InstanceInfo,
    Param,
    Result,
    WrongParameter,
    endpoint,
    periodic,
)
from passerelle.text import TextTemplate, fold

if TYPE_CHECKING:
    from passerelle.settings import Settings

__all__ = ["LayersConnector"]

Output = Literal["geojson", "datasource"]
BBOX_CRS = (4326, 2154, 3857)

OUTPUT_PARAM = Param("geojson: a FeatureCollection; datasource: {data: [{id, text, …}]}", example="geojson")
LAT_PARAM = Param("Latitude (WGS84)", example=44.5594, schema={"minimum": -90, "maximum": 90})
LON_PARAM = Param("Longitude (WGS84)", example=6.0786, schema={"minimum": -180, "maximum": 180})
X_PARAM = Param("Easting in Lambert-93 (EPSG:2154), instead of lat/lon")
Y_PARAM = Param("Northing in Lambert-93 (EPSG:2154), with x")
BBOX_PARAM = Param("Box west,south,east,north (in bbox_crs)", example="6.05,44.54,6.10,44.58")
BBOX_CRS_PARAM = Param("EPSG code of bbox: 4326 (lon/lat, default), 2154 (Lambert-93) or 3857", example=4326)
QUERY_NAME_PARAM = Param("Name of the named query", example="secteurs")
GEOMETRY_PARAM = Param("Add each item's geometry (GeoJSON) to data-source items")


def parse_bbox(value: str, crs: int) -> tuple[float, float, float, float]:
    """A WGS84 west, south, east, north box from the ``bbox`` parameter in ``crs``."""
    if crs not in BBOX_CRS:
        raise WrongParameter(f"invalid value for parameter 'bbox_crs': one of {', '.join(map(str, BBOX_CRS))}")
    try:
        west, south, east, north = (float(part) for part in value.split(","))
    except ValueError:
        raise WrongParameter("invalid value for parameter 'bbox': four numbers west,south,east,north") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)) or west >= east or south >= north:
        raise WrongParameter("invalid value for parameter 'bbox': west < east and south < north are expected")
    if crs == 4326:
        try:
            check_lon_lat(west, south)
            check_lon_lat(east, north)
        except ValueError as error:
            raise WrongParameter(f"invalid value for parameter 'bbox': {error} (lon/lat order)") from None
        return west, south, east, north
    box = transformer(crs, 4326).transform_bounds(west, south, east, north, densify_pts=21)
    if not all(math.isfinite(v) for v in box):
        raise WrongParameter(f"invalid value for parameter 'bbox': outside the area of EPSG:{crs}")
    return box


def parse_point(lat: float | None, lon: float | None, x: float | None, y: float | None) -> tuple[float, float] | None:
    """(lon, lat) from lat/lon or Lambert-93 x/y, or None when neither is given."""
    if x is not None or y is not None:
        if x is None or y is None or lat is not None or lon is not None:
            raise WrongParameter("give 'lat' and 'lon' (WGS84), or 'x' and 'y' (Lambert-93)")
        try:
            return lambert93_to_wgs84(x, y)
        except ValueError as error:
            raise WrongParameter(f"invalid 'x'/'y': {error}") from None
    if (lat is None) != (lon is None):
        raise WrongParameter("give both 'lat' and 'lon', or neither")
    if lat is None or lon is None:
        return None
    return lon, lat


def with_geometry(item: dict[str, Any], feature: Feature, geometry: bool) -> dict[str, Any]:
    return {**item, "geometry": feature.geometry_json()} if geometry else item


def _answer(
    features: list[Feature], output: Output, id_template: str | None, text_template: str, geometry: bool
) -> Any:
    if output == "geojson":
        return to_feature_collection(features)
    try:
        ids = TextTemplate.parse(id_template) if id_template else None
        texts = TextTemplate.parse(text_template)
    except ValueError as error:
        raise WrongParameter(str(error)) from None
    return {"err": 0, "data": [with_geometry(f.item(ids, texts), f, geometry) for f in features]}


class LayersConnector(Connector, ABC):
    config: LayersConfig

    def __init__(self, instance: InstanceInfo, config: BaseModel, settings: Settings) -> None:
        super().__init__(instance, config, settings)
        self._provider: Provider | None = None
        self.named = NamedQueries(self.provider, self.config.queries, self.files_dir, self.logger)

    @abstractmethod
    def build_provider(self) -> Provider:
        """The provider of this instance's server (its protocol, ``self.http``, the config)."""

    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = self.build_provider()
        return self._provider

    @periodic(seconds=60, description="Fetches again the named queries older than their refresh_interval.")
    async def refresh_queries(self) -> None:
        await self.named.refresh_due()

    def status_details(self) -> dict[str, Any]:
        return {"queries": self.named.status()}

    async def check_status(self) -> None:
        # Listing the layers is the cheapest call every protocol has, with the real credentials.
        await self.provider().layers()

    # -- from the server -------------------------------------------------------------------------------

    @endpoint(
        description="The layers the server offers",
        long_description="{data: [{id, text, title, description, geometry_type, bbox, fields}]}, bbox in WGS84.",
        display_order=1,
    )
    async def layers(self) -> list[dict[str, Any]]:
        found = await self.provider().layers()
        return [
            {
                "id": layer.name,
                "text": layer.title or layer.name,
                "title": layer.title,
                "description": layer.description,
                "geometry_type": layer.geometry_type,
                "bbox": list(layer.bbox) if layer.bbox else None,
                "fields": list(layer.fields),
            }
            for layer in found
        ]

    @endpoint(
        description="Features of a layer, asked to the server",
        long_description=(
            "Features of `layer` intersecting `bbox`, covering the point lat/lon (or x/y), and whose properties "
            "equal the other query-string parameters (e.g. `?layer=ecoles&commune=Gap`). A GeoJSON FeatureCollection "
            "in WGS84 without envelope, or with output=datasource {err, data: [{id, text, …properties, geometry}]} "
            "with id_template/text_template over the properties."
        ),
        raw=True,
        display_order=2,
    )
    async def features(
        self,
        layer: Annotated[str, Param("Layer name (WFS type, OGC API collection, ArcGIS layer id)", example="secteurs")],
        bbox: Annotated[str | None, BBOX_PARAM] = None,
        bbox_crs: Annotated[int, BBOX_CRS_PARAM] = 4326,
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        x: Annotated[float | None, X_PARAM] = None,
        y: Annotated[float | None, Y_PARAM] = None,
        properties: Annotated[str | None, Param("Properties to keep, comma-separated", example="nom,jour")] = None,
        limit: Annotated[int, Param("Most features", example=100, schema={"minimum": 1, "maximum": 10000})] = 1000,
        output: Annotated[Output, OUTPUT_PARAM] = "geojson",
        id_template: Annotated[str | None, Param("Item id template (datasource)", example="{code}")] = None,
        text_template: Annotated[str, Param("Item text template (datasource)", example="{nom}")] = "{id}",
        geometry: Annotated[bool, GEOMETRY_PARAM] = False,
        **filters: str,
    ) -> Any:
        query = LayerQuery(
            layer=layer,
            bbox=parse_bbox(bbox, bbox_crs) if bbox else None,
            point=parse_point(lat, lon, x, y),
            filters=filters,
            properties=tuple(p.strip() for p in properties.split(",") if p.strip()) if properties else None,
            limit=limit,
        )
        batch = await self.provider().features(query)
        return _answer(batch.features, output, id_template, text_template, geometry)

    # -- from the hub's copy ---------------------------------------------------------------------------

    @endpoint(
        name="query",
        description="Features of a named query, from the hub's copy",
        long_description=(
            "A GeoJSON FeatureCollection (WGS84, no envelope) or, with output=datasource, {err, data: [{id, text, …}]} "
            "using the query's templates; narrowed by q (words of the text), id, a point lat/lon (or x/y) inside "
            "the features, a bbox."
        ),
        pattern=r"^(?P<query_name>[\w-]+)/?$",
        example_pattern="{query_name}/",
        raw=True,
        display_order=3,
    )
    async def query(
        self,
        query_name: Annotated[str, QUERY_NAME_PARAM],
        q: Annotated[str | None, Param("Words the item's text must hold (case and accents ignored)")] = None,
        ident: Annotated[str | None, Param("Item id (from the query's id template)", alias="id")] = None,
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        x: Annotated[float | None, X_PARAM] = None,
        y: Annotated[float | None, Y_PARAM] = None,
        bbox: Annotated[str | None, BBOX_PARAM] = None,
        bbox_crs: Annotated[int, BBOX_CRS_PARAM] = 4326,
        limit: Annotated[int | None, Param("Most features", schema={"minimum": 1})] = None,
        output: Annotated[Output, OUTPUT_PARAM] = "geojson",
        geometry: Annotated[bool, GEOMETRY_PARAM] = False,
    ) -> Any:
        loaded = await self.named.get(query_name)
        index = loaded.index
        positions: list[int] = list(range(len(index.features)))
        point = parse_point(lat, lon, x, y)
        if point is not None:
            positions = index.containing_positions(*point)
        if bbox:
            boxed = set(index.bbox_positions(*parse_bbox(bbox, bbox_crs)))
            positions = [i for i in positions if i in boxed]
        if ident is not None:
            positions = [i for i in positions if str(loaded.items[i]["id"]) == ident]
        if q:
            words = fold(q).split()
            positions = [i for i in positions if all(w in loaded.folded_texts[i] for w in words)]
        positions = positions[:limit] if limit else positions
        if output == "geojson":
            return to_feature_collection([index.features[i] for i in positions])
        return {"err": 0, "data": [with_geometry(loaded.items[i], index.features[i], geometry) for i in positions]}

    async def _point_of(
        self, address: str | None, lat: float | None, lon: float | None, x: float | None, y: float | None
    ) -> tuple[tuple[float, float], dict[str, Any]]:
        point = parse_point(lat, lon, x, y)
        if point is not None:
            if address:
                raise WrongParameter("give an address or a point, not both")
            return point, {"lat": point[1], "lon": point[0]}
        if not address or not address.strip():
            raise WrongParameter("give 'address' (geocoded by the instance's geocoder) or 'lat' and 'lon'")
        if not self.config.geocoder:
            raise WrongParameter("this instance has no geocoder configured: give 'lat' and 'lon' instead of 'address'")
        found = await self.call_instance(self.config.geocoder, "search", q=address, limit=1)
        if not found:
            # Not quoted: error messages reach the logs, and a citizen's address is personal data.
            raise APIError("address not found by the geocoder: check it, or give lat and lon")
        first = found[0]
        lon_found, lat_found = float(first["lon"]), float(first["lat"])
        return (lon_found, lat_found), {"lat": lat_found, "lon": lon_found, "address": first.get("display_name", "")}

    @endpoint(
        description="The polygons of a named query containing an address or a point",
        long_description=(
            "Which school sector, collection zone, polling station… serves this address: the address is "
            "geocoded by the configured base-adresse instance (or lat/lon, x/y given), then looked up in the "
            "named query's polygons on the hub. {err, data: [{id, text, …}], point: {lat, lon, address}}; "
            "an empty data when no polygon contains it."
        ),
        display_order=4,
    )
    async def sector(
        self,
        query: Annotated[str, QUERY_NAME_PARAM],
        address: Annotated[str | None, Param("Address as typed", example="12 rue carnot gap")] = None,
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        x: Annotated[float | None, X_PARAM] = None,
        y: Annotated[float | None, Y_PARAM] = None,
        geometry: Annotated[bool, GEOMETRY_PARAM] = False,
    ) -> Result:
        loaded = await self.named.get(query)
        (point, described) = await self._point_of(address, lat, lon, x, y)
        index = loaded.index
        items = [
            with_geometry(loaded.items[i], index.features[i], geometry) for i in index.containing_positions(*point)
        ]
        return Result(items, point=described)

    @endpoint(
        description="The features of a named query nearest to a point",
        long_description=(
            "{err, data: [{id, text, …, distance}]}: features within `distance` metres of lat/lon (or x/y), "
            "nearest first, distance in metres (0 inside a polygon)."
        ),
        display_order=5,
    )
    async def nearest(
        self,
        query: Annotated[str, QUERY_NAME_PARAM],
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        x: Annotated[float | None, X_PARAM] = None,
        y: Annotated[float | None, Y_PARAM] = None,
        distance: Annotated[
            float, Param("Metres around the point", example=500, schema={"exclusiveMinimum": 0, "maximum": 50000})
        ] = 500,
        limit: Annotated[int, Param("Most features", example=5, schema={"minimum": 1, "maximum": 100})] = 5,
    ) -> list[dict[str, Any]]:
        point = parse_point(lat, lon, x, y)
        if point is None:
            raise WrongParameter("give 'lat' and 'lon' (WGS84), or 'x' and 'y' (Lambert-93)")
        loaded = await self.named.get(query)
        return [
            {**loaded.items[i], "distance": metres}
            for i, metres in loaded.index.nearest_positions(*point, distance, limit)
        ]
