"""A provider over an OGC WFS 2.0.0 or 1.1.0 server (MapServer, GeoServer, QGIS Server…).

GetCapabilities (once per provider), DescribeFeatureType (once per layer when properties are
chosen) and unfiltered GetFeature pages are KVP ``GET``. A GetFeature with property filters is
a ``POST`` of an XML ``wfs:GetFeature`` in WFS 2.0.0, its FES 2.0 filter inside the
``wfs:Query`` (a filter grows with its conditions, a URL does not; declared idempotent, so the
outbound client may retry it like a GET); in 1.1.0, where servers page POSTs unevenly, the OGC
Filter 1.1 goes in KVP ``FILTER=`` — never in OWSLib's ``query=`` that servers ignore. Since
``BBOX`` and a filter exclude each other, a box then goes inside the filter as ``<fes:BBOX>``.

Axis order (protocols.md §4.1, tests/peers/test_mapserver.py) is decided like this:

- **the box we send** is in ``urn:ogc:def:crs:OGC:1.3:CRS84`` (lon, lat) when the layer
  advertises it, else in ``urn:ogc:def:crs:EPSG::4326`` written lat, lon. Both URNs have one
  meaning everywhere, unlike ``EPSG:4326`` which MapServer 8 reads lat, lon in 2.0 and
  GeoServer lon, lat: a wrong guess is a 200 with no feature, indistinguishable from an
  empty place.
- **the coordinates we receive** should be lon, lat (GeoJSON is, RFC 7946, and MapServer
  writes it so whatever the SRSNAME), but GeoServer honours the URN's lat, lon in its
  GeoJSON. So each page is checked against the layer's ``WGS84BoundingBox`` (always
  lon, lat in the capabilities): the coordinates are swapped when more of them fall in the
  box swapped than as they are; without that box, the features answered to a box or a
  point query must intersect what we sent. Ties (nothing to compare with, or a box
  symmetric enough to fit both ways) keep the GeoJSON order. A projected ``crs``
  (EPSG:2154…) is asked for as ``SRSNAME`` and brought back with :func:`reproject`,
  checked the same way.

  Asking for a projected CRS always instead would avoid the question for the answers but
  not for the box we send, would need the server to offer one that covers the layer, and
  costs a reprojection of every vertex: it is an option (``crs``), not the default.

Paging: ``COUNT`` (``MAXFEATURES`` in 1.1.0) is the page size capped by the advertised
``CountDefault``/``DefaultMaxFeatures``, because MapServer caps it silently there and says
nothing in its GeoJSON (no ``numberReturned``, ``numberMatched`` only on the last page):
a page shorter than the COUNT asked is the last one unless ``numberMatched`` says more.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from connectors.sig.coordinates import reproject
from connectors.sig.layers.features import Feature, FeatureError, feature_from_geojson
from connectors.sig.layers.geojsonfile import matches
from connectors.sig.layers.provider import DEFAULT_MAX_FEATURES, FeatureBatch, LayerInfo, LayerQuery, TooManyFeatures
from passerelle.envelope import NotFound, UpstreamError
from passerelle.http import HttpClient, Response, answer_excerpt

__all__ = ["WFSProvider"]

CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
# Preferred first; matched case-insensitively. Anything else with "json" in it comes after.
GEOJSON_FORMATS = ("application/geo+json", "application/json", "geojson", "json")
# A point query is sent as a box this wide around the point (about a metre), then checked
# locally with ``covers``: not every server has FES Intersects with a gml:Point.
POINT_BOX = 1e-5
GML_GEOMETRY_TYPES = {
    "GeometryPropertyType",
    "PointPropertyType",
    "MultiPointPropertyType",
    "CurvePropertyType",
    "LineStringPropertyType",
    "MultiCurvePropertyType",
    "MultiLineStringPropertyType",
    "SurfacePropertyType",
    "PolygonPropertyType",
    "MultiSurfacePropertyType",
    "MultiPolygonPropertyType",
    "MultiGeometryPropertyType",
    "GeometryAssociationType",
}
NAMESPACES = {
    "2.0.0": {
        "filter": "http://www.opengis.net/fes/2.0",
        "gml": "http://www.opengis.net/gml/3.2",
        "property": "ValueReference",
    },
    "1.1.0": {
        "filter": "http://www.opengis.net/ogc",
        "gml": "http://www.opengis.net/gml",
        "property": "PropertyName",
    },
}


@dataclass
class _FeatureType:
    info: LayerInfo
    crs: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)


@dataclass
class _Capabilities:
    types: dict[str, _FeatureType]
    formats: list[str]  # GetFeature's outputFormat values
    count_default: int | None  # the server's page size cap, when it says
    namespaces: dict[str, str] = field(default_factory=dict)  # prefixes of the type names (ms: …)


def _declared_namespaces(body: bytes) -> dict[str, str]:
    """Every ``xmlns:prefix`` of a document: ElementTree resolves prefixes away, but a POSTed query
    must declare the one of its type name (``ms:communes``)."""
    found: dict[str, str] = {}
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(body), events=("start-ns",)):
            if prefix:
                found.setdefault(prefix, uri)
    except ET.ParseError:
        pass
    return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _exception_message(root: ET.Element) -> str | None:
    """The server's words from an ``ows:ExceptionReport`` or 1.x ``ServiceExceptionReport``."""
    if _local(root.tag) not in ("ExceptionReport", "ServiceExceptionReport"):
        return None
    parts = []
    for item in root:
        if _local(item.tag) not in ("Exception", "ServiceException"):
            continue
        code = item.attrib.get("exceptionCode") or item.attrib.get("code") or ""
        locator = item.attrib.get("locator") or ""
        texts = [_text(t) for t in item.iterfind("{*}ExceptionText")] or [_text(item)]
        words = " ".join(t for t in texts if t)
        label = code + (f" ({locator})" if locator else "")
        parts.append(": ".join(p for p in (label, words) if p))
    return "; ".join(parts) or "an exception report without details"


def _is_exception_report(response: Response) -> bool:
    """An exception report sent with HTTP 5xx (QGIS Server, some GeoServer errors) is an answer
    to quote, not a failure to retry."""
    return b"ExceptionReport" in response.body[:1000]


def _lower_corner(text: str) -> tuple[float, float] | None:
    values = text.split()
    try:
        return (float(values[0]), float(values[1])) if len(values) == 2 else None
    except ValueError:
        return None


def _parse_capabilities(root: ET.Element) -> _Capabilities:
    operation_formats: list[str] = []
    count_default: int | None = None
    for operation in root.iterfind(".//{*}OperationsMetadata/{*}Operation"):
        if operation.attrib.get("name") != "GetFeature":
            continue
        for parameter in operation.iterfind("{*}Parameter"):
            if parameter.attrib.get("name", "").lower() == "outputformat":
                operation_formats += [_text(v) for v in parameter.iter() if _local(v.tag) == "Value"]
    for constraint in root.iterfind(".//{*}OperationsMetadata//{*}Constraint"):
        if constraint.attrib.get("name") in ("CountDefault", "DefaultMaxFeatures"):
            value = _text(constraint.find("{*}DefaultValue")) or _text(constraint.find("{*}Value"))
            if value.isdigit() and int(value) > 0:
                count_default = int(value)
    types: dict[str, _FeatureType] = {}
    for item in root.iterfind(".//{*}FeatureTypeList/{*}FeatureType"):
        name = _text(item.find("{*}Name"))
        if not name:
            continue
        bbox = None
        box = item.find("{*}WGS84BoundingBox")
        if box is not None:
            lower = _lower_corner(_text(box.find("{*}LowerCorner")))
            upper = _lower_corner(_text(box.find("{*}UpperCorner")))
            if lower and upper:
                bbox = (lower[0], lower[1], upper[0], upper[1])
        crs = [_text(c) for c in item if _local(c.tag) in ("DefaultCRS", "OtherCRS", "DefaultSRS", "OtherSRS", "SRS")]
        formats = [_text(f) for f in item.iterfind("{*}OutputFormats/{*}Format")]
        info = LayerInfo(
            name=name,
            title=_text(item.find("{*}Title")),
            description=_text(item.find("{*}Abstract")),
            bbox=bbox,
        )
        types[name] = _FeatureType(info, crs, formats)
    return _Capabilities(types, operation_formats, count_default)


def _geojson_format(offered: list[str]) -> str | None:
    lowered = [f.lower() for f in offered]
    for wanted in GEOJSON_FORMATS:
        if wanted in lowered:
            return offered[lowered.index(wanted)]
    return next((f for f in offered if "json" in f.lower()), None)


def _swap(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda coords: coords[:, ::-1])


def _inside(coords: np.ndarray, bbox: tuple[float, float, float, float]) -> int:
    west, south, east, north = bbox
    # Generous: capabilities' boxes are sometimes stale or computed loosely.
    margin = 0.1 * max(east - west, north - south) + 0.01
    x, y = coords[:, 0], coords[:, 1]
    return int(((x >= west - margin) & (x <= east + margin) & (y >= south - margin) & (y <= north + margin)).sum())


def _plausible(coords: np.ndarray) -> int:
    return int(((np.abs(coords[:, 0]) <= 180) & (np.abs(coords[:, 1]) <= 90)).sum())


class WFSProvider:
    """WFS 2.0.0 / 1.1.0 layers. ``crs`` is the EPSG code asked as SRSNAME (4326 by default; a
    projected one when the server reprojects badly to WGS84), ``output_format`` overrides the
    GeoJSON format found in the capabilities, ``id_property`` names the property that
    identifies a feature when the server sends no GeoJSON ``id`` (MapServer's
    ``gml_featureid``)."""

    def __init__(
        self,
        http: HttpClient,
        service_url: str,
        *,
        version: str = "2.0.0",
        crs: int = 4326,
        output_format: str | None = None,
        page_size: int = 500,
        max_features: int = DEFAULT_MAX_FEATURES,
        id_property: str | None = None,
    ) -> None:
        if version not in NAMESPACES:
            raise ValueError(f"WFS version {version!r} is not supported (2.0.0 or 1.1.0)")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.http = http
        self.service_url = service_url
        self.version = version
        self.crs = crs
        self.output_format = output_format
        self.page_size = page_size
        self.max_features = max_features
        self.id_property = id_property
        self._capabilities: _Capabilities | None = None
        self._geometry_names: dict[str, str | None] = {}

    # -- requests ---------------------------------------------------------------

    async def _get(self, request: str, params: dict[str, str]) -> Response:
        # The URL we were given, not the capabilities' operation URLs: behind a proxy those
        # are often wrong, and MapServer's end with '&'.
        return await self.http.get(
            self.service_url,
            params={"SERVICE": "WFS", "VERSION": self.version, "REQUEST": request, **params},
            accept=_is_exception_report,
        )

    def _xml(self, response: Response, what: str) -> ET.Element:
        try:
            root = ET.fromstring(response.body)
        except ET.ParseError:
            raise UpstreamError(self._not_expected(response, what)) from None
        if _local(root.tag).lower() == "html":
            raise UpstreamError(self._not_expected(response, what))
        message = _exception_message(root)
        if message is not None:
            raise UpstreamError(f"the WFS refused the {what} request: {message}")
        if response.status >= 400:
            raise UpstreamError(f"the WFS answered HTTP {response.status} to the {what} request")
        return root

    def _not_expected(self, response: Response, what: str) -> str:
        head = response.body.lstrip()[:200].lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            kind = "an HTML page"
        elif not head:
            kind = "an empty body"
        else:
            kind = "something else"
        return (
            f"the WFS answered {kind} to the {what} request (HTTP {response.status}); is {self.service_url} "
            f"a WFS {self.version} endpoint? {answer_excerpt(response.body, 200)!r}"
        )

    async def _caps(self) -> _Capabilities:
        if self._capabilities is None:
            response = await self._get("GetCapabilities", {})
            root = self._xml(response, "GetCapabilities")
            if _local(root.tag) != "WFS_Capabilities":
                raise UpstreamError(f"the WFS answered a <{_local(root.tag)}> document, not WFS capabilities")
            self._capabilities = _parse_capabilities(root)
            self._capabilities.namespaces = _declared_namespaces(response.body)
        return self._capabilities

    async def layers(self) -> list[LayerInfo]:
        return [t.info for t in (await self._caps()).types.values()]

    async def _feature_type(self, name: str) -> _FeatureType:
        types = (await self._caps()).types
        if name in types:
            return types[name]
        # 'communes' for 'ms:communes': the prefix is a detail users leave out.
        unprefixed = [t for key, t in types.items() if key.split(":")[-1] == name]
        if len(unprefixed) == 1:
            return unprefixed[0]
        raise NotFound(f"no layer '{name}' in the WFS; layers: {', '.join(types) or 'none'}")

    async def _geometry_name(self, type_name: str) -> str | None:
        """The geometry property of a feature type (DescribeFeatureType), for PROPERTYNAME:
        GeoServer leaves the geometry out unless it is listed."""
        if type_name not in self._geometry_names:
            key = "TYPENAMES" if self.version == "2.0.0" else "TYPENAME"
            found = None
            try:
                root = self._xml(await self._get("DescribeFeatureType", {key: type_name}), "DescribeFeatureType")
            except UpstreamError:
                root = None
            if root is not None:
                for element in root.iter():
                    kind = element.attrib.get("type", "").rsplit(":", 1)[-1]
                    if _local(element.tag) == "element" and kind in GML_GEOMETRY_TYPES:
                        found = element.attrib.get("name")
                        break
            self._geometry_names[type_name] = found
        return self._geometry_names[type_name]

    # -- GetFeature ---------------------------------------------------------------

    def _area_filter(self, area: tuple[float, float, float, float], crs84: bool) -> tuple[str, ET.Element]:
        """The box as a KVP BBOX value and as a filter Envelope, in a CRS with one axis order."""
        west, south, east, north = area
        if crs84:
            srs, lower, upper = CRS84, f"{west} {south}", f"{east} {north}"
            kvp = f"{west},{south},{east},{north},{CRS84}"
        else:
            srs, lower, upper = "urn:ogc:def:crs:EPSG::4326", f"{south} {west}", f"{north} {east}"
            kvp = f"{south},{west},{north},{east},{srs}"
        ns = NAMESPACES[self.version]
        bbox = ET.Element(f"{{{ns['filter']}}}BBOX")
        envelope = ET.SubElement(bbox, f"{{{ns['gml']}}}Envelope", srsName=srs)
        ET.SubElement(envelope, f"{{{ns['gml']}}}lowerCorner").text = lower
        ET.SubElement(envelope, f"{{{ns['gml']}}}upperCorner").text = upper
        return kvp, bbox

    def _filter(self, filters: dict[str, str], bbox: ET.Element | None) -> str:
        return ET.tostring(self._filter_element(filters, bbox), encoding="unicode")

    def _filter_element(self, filters: dict[str, str], bbox: ET.Element | None) -> ET.Element:
        ns = NAMESPACES[self.version]
        fes = ns["filter"]
        ET.register_namespace("fes" if self.version == "2.0.0" else "ogc", fes)
        ET.register_namespace("gml", ns["gml"])
        root = ET.Element(f"{{{fes}}}Filter")
        conditions: list[ET.Element] = []
        for key, value in filters.items():
            equal = ET.Element(f"{{{fes}}}PropertyIsEqualTo", matchCase="true")
            ET.SubElement(equal, f"{{{fes}}}{ns['property']}").text = key
            ET.SubElement(equal, f"{{{fes}}}Literal").text = value
            conditions.append(equal)
        if bbox is not None:
            conditions.append(bbox)
        if len(conditions) == 1:
            root.append(conditions[0])
        else:
            ET.SubElement(root, f"{{{fes}}}And").extend(conditions)
        return root

    def _get_feature_xml(self, params: dict[str, str], start: int, count: int) -> bytes:
        """The POST body of a WFS 2.0.0 GetFeature equal to ``params`` (the KVP form)."""
        wfs = "http://www.opengis.net/wfs/2.0"
        ET.register_namespace("wfs", wfs)
        type_name = params["TYPENAMES"]
        root = ET.Element(
            f"{{{wfs}}}GetFeature",
            service="WFS",
            version="2.0.0",
            outputFormat=params["OUTPUTFORMAT"],
            count=str(count),
            startIndex=str(start),
        )
        prefix = type_name.split(":")[0] if ":" in type_name else None
        uri = (self._capabilities.namespaces if self._capabilities else {}).get(prefix or "")
        if prefix and uri:
            root.set(f"xmlns:{prefix}", uri)
        query = ET.SubElement(root, f"{{{wfs}}}Query", typeNames=type_name, srsName=params["SRSNAME"])
        for name in params.get("PROPERTYNAME", "").split(",") if params.get("PROPERTYNAME") else []:
            ET.SubElement(query, f"{{{wfs}}}PropertyName").text = name
        query.append(ET.fromstring(params["FILTER"]))
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    async def features(self, query: LayerQuery) -> FeatureBatch:
        capabilities = await self._caps()
        feature_type = await self._feature_type(query.layer)
        type_name = feature_type.info.name
        output_format = self.output_format or _geojson_format(feature_type.formats + capabilities.formats)
        if output_format is None:
            offered = ", ".join(dict.fromkeys(feature_type.formats + capabilities.formats)) or "none"
            raise UpstreamError(
                f"the WFS offers no GeoJSON output for '{type_name}' (formats: {offered}); set the output format"
            )
        crs84 = any("crs84" in c.lower() for c in feature_type.crs)
        srsname = CRS84 if crs84 and self.crs == 4326 else f"urn:ogc:def:crs:EPSG::{self.crs}"
        two = self.version == "2.0.0"
        params: dict[str, str] = {
            "TYPENAMES" if two else "TYPENAME": type_name,
            "SRSNAME": srsname,
            "OUTPUTFORMAT": output_format,
        }
        area = query.bbox
        if query.point is not None:
            lon, lat = query.point
            area = (lon - POINT_BOX, lat - POINT_BOX, lon + POINT_BOX, lat + POINT_BOX)
        if area is not None:
            kvp_box, filter_box = self._area_filter(area, crs84)
            if query.filters:
                params["FILTER"] = self._filter(dict(query.filters), filter_box)
            else:
                params["BBOX"] = kvp_box
        elif query.filters:
            params["FILTER"] = self._filter(dict(query.filters), None)
        if query.properties is not None:
            geometry = await self._geometry_name(type_name)
            # Without the geometry's name, asking for properties would lose it on GeoServer:
            # then everything comes and is trimmed here.
            if geometry is not None:
                wanted = [*query.properties, *query.filters, *([self.id_property] if self.id_property else [])]
                params["PROPERTYNAME"] = ",".join(dict.fromkeys([geometry, *wanted]))

        page_size = min(self.page_size, capabilities.count_default or self.page_size)
        local_name = type_name.split(":")[-1]
        kept: list[Feature] = []
        first: Any = None
        start = 0
        number_matched: int | None = None
        while True:
            count = page_size if query.limit is None else max(1, min(page_size, query.limit - len(kept)))
            page = await self._page(params, start, count)
            matched = page.get("numberMatched", page.get("totalFeatures"))  # GeoServer says both
            if isinstance(matched, int) and not isinstance(matched, bool):
                number_matched = matched
                if query.limit is None and matched > self.max_features:
                    raise self._too_many(type_name, f"{matched} features match")
            raw = page["features"]
            if raw and start and raw[0] == first:
                # Servers without paging (STARTINDEX is not in WFS 1.1.0's standard) send the
                # first page again: without this, the cap would be reached with duplicates.
                raise UpstreamError(
                    f"the WFS sent the same features again for STARTINDEX={start}: it cannot page "
                    f"'{type_name}'; raise its maximum of features per answer or narrow the query"
                )
            if raw and not start:
                first = raw[0]
            for item in self._convert(raw, feature_type.info.bbox, area, local_name, start):
                # Checked again here: the point was sent as a box, and a server may ignore a filter.
                if matches(item, query):
                    kept.append(_keep(item, query.properties))
                    if query.limit is not None and len(kept) >= query.limit:
                        return FeatureBatch(kept)
            start += len(raw)
            if query.limit is None and start > self.max_features:
                raise self._too_many(type_name, f"more than {self.max_features} features match")
            if not raw:
                break
            if number_matched is not None:
                if start >= number_matched:
                    break
            elif len(raw) < count:
                break
        # Everything was fetched and checked here: the count is exact, unlike the server's
        # when the point went as a box.
        return FeatureBatch(kept, number_matched=len(kept) if query.limit is None else None)

    def _too_many(self, type_name: str, what: str) -> TooManyFeatures:
        return TooManyFeatures(
            f"{what} in the WFS layer '{type_name}', more than {self.max_features}: narrow the query (a filter, a box)"
        )

    async def _page(self, params: dict[str, str], start: int, count: int) -> dict[str, Any]:
        two = self.version == "2.0.0"
        if two and "FILTER" in params:
            response = await self.http.post(
                self.service_url,
                data=self._get_feature_xml(params, start, count),
                headers={"Content-Type": "application/xml"},
                idempotent=True,  # a read: repeating it is safe
                accept=_is_exception_report,
            )
        else:
            response = await self._get(
                "GetFeature", {**params, "COUNT" if two else "MAXFEATURES": str(count), "STARTINDEX": str(start)}
            )
        if response.body.lstrip()[:1] == b"<":
            self._xml(response, "GetFeature")  # raises on an exception report and on HTML
            raise UpstreamError(
                f"the WFS answered XML, not GeoJSON, to GetFeature (HTTP {response.status}): is "
                f"'{params['OUTPUTFORMAT']}' a GeoJSON output format of this server?"
            )
        if not response.body.strip():
            raise UpstreamError(self._not_expected(response, "GetFeature"))
        try:
            data = response.json()
        except UpstreamError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("exceptions"), list):  # GeoServer's EXCEPTIONS=json
            words = "; ".join(
                ": ".join(str(e[k]) for k in ("code", "locator", "text") if isinstance(e, dict) and e.get(k))
                for e in data["exceptions"]
            )
            raise UpstreamError(f"the WFS refused the GetFeature request: {words or 'no details'}")
        if response.status >= 400:
            raise UpstreamError(
                f"the WFS answered HTTP {response.status} to GetFeature: {answer_excerpt(response.body, 200)!r}"
            )
        if data is None:
            raise UpstreamError(
                f"the WFS answered something that is not JSON to GetFeature: {answer_excerpt(response.body, 200)!r}"
            )
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise UpstreamError("the WFS answered JSON that is not a GeoJSON FeatureCollection to GetFeature")
        if not isinstance(data.get("features"), list):
            raise UpstreamError("the WFS answered a FeatureCollection without a list of features")
        return data

    def _convert(
        self,
        raw: list[Any],
        layer_bbox: tuple[float, float, float, float] | None,
        area: tuple[float, float, float, float] | None,
        local_name: str,
        start: int,
    ) -> list[Feature]:
        geometries: list[BaseGeometry] = []
        for position, item in enumerate(raw):
            where = f"feature {start + position + 1} of '{local_name}'"
            if not isinstance(item, dict) or not isinstance(item.get("geometry"), dict):
                raise UpstreamError(f"the WFS sent {where} without a geometry")
            try:
                geometries.append(shapely.geometry.shape(item["geometry"]))
            except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError) as e:
                raise UpstreamError(f"the WFS sent {where} with a geometry that cannot be read: {e}") from None
        swap = self._swapped(geometries, layer_bbox, area)
        features = []
        for position, (item, geometry) in enumerate(zip(raw, geometries, strict=True)):
            if swap:
                geometry = _swap(geometry)
            if self.crs != 4326:
                try:
                    geometry = reproject(geometry, self.crs, 4326)
                except ValueError as error:
                    raise UpstreamError(f"the WFS sent a feature that cannot be reprojected: {error}") from None
            properties = item.get("properties") or {}
            ident = self._ident(item, properties if isinstance(properties, dict) else {})
            try:
                features.append(
                    feature_from_geojson(
                        {**item, "id": ident, "geometry": shapely.geometry.mapping(geometry)},
                        fallback_id=f"{local_name}.{start + position + 1}",
                    )
                )
            except FeatureError as error:
                raise UpstreamError(f"the WFS sent feature {start + position + 1} of '{local_name}': {error}") from None
        return features

    def _ident(self, item: dict[str, Any], properties: dict[str, Any]) -> str | None:
        candidates = [properties.get(self.id_property)] if self.id_property else []
        candidates += [item.get("id"), properties.get("gml_id"), properties.get("fid")]
        for candidate in candidates:
            if candidate not in (None, ""):
                if isinstance(candidate, float) and candidate.is_integer():
                    candidate = int(candidate)
                return str(candidate)
        return None

    def _swapped(
        self,
        geometries: list[BaseGeometry],
        layer_bbox: tuple[float, float, float, float] | None,
        area: tuple[float, float, float, float] | None,
    ) -> bool:
        """Whether this page's coordinates come northing first (see the module's docstring)."""
        if not geometries:
            return False
        coords = shapely.get_coordinates(np.array(geometries, dtype=object))
        if not len(coords) or not np.isfinite(coords).all():
            return False
        as_sent, swapped = coords, coords[:, ::-1]
        if self.crs != 4326:
            as_sent, swapped = _to_wgs84(as_sent, self.crs), _to_wgs84(swapped, self.crs)
        if layer_bbox is not None and all(math.isfinite(v) for v in layer_bbox):
            return _inside(swapped, layer_bbox) > _inside(as_sent, layer_bbox)
        if area is not None:
            # No box in the capabilities: the features answered intersect the box we sent.
            box = shapely.box(*area)
            return self._hits(geometries, box, swap=True) > self._hits(geometries, box, swap=False)
        return _plausible(swapped) > _plausible(as_sent)

    def _hits(self, geometries: list[BaseGeometry], box: shapely.Polygon, *, swap: bool) -> int:
        hits = 0
        for geometry in geometries:
            if swap:
                geometry = _swap(geometry)
            try:
                hits += bool(reproject(geometry, self.crs, 4326).intersects(box))
            except ValueError:
                continue
        return hits


def _to_wgs84(coords: np.ndarray, crs: int) -> np.ndarray:
    try:
        moved = shapely.get_coordinates(reproject(shapely.multipoints(coords), crs, 4326))
    except ValueError:
        return np.full_like(coords, np.nan)
    return moved


def _keep(feature: Feature, properties: tuple[str, ...] | None) -> Feature:
    if properties is None:
        return feature
    return Feature(feature.id, feature.geometry, {k: feature.properties.get(k) for k in properties})
