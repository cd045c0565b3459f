"""The ArcGIS REST provider: the layers of a FeatureServer or MapServer (ArcGIS Server / Enterprise, ArcGIS Online),
read through ``<service>?f=json``, ``<service>/<id>?f=json`` and ``<service>/<id>/query`` (protocols.md §4.3).

Choices, and why:

- ``f=json`` rather than ``f=geojson``: older servers and MapServers lack GeoJSON, and only the Esri JSON answer
  gives the field types, which say which epoch-millisecond numbers are dates (turned into ISO 8601 UTC strings).
- Paging by ``resultOffset`` ordered by the object id (without an order servers guarantee none, and pages would
  overlap or miss records), advancing by what came back, since servers may answer short pages while keeping
  ``exceededTransferLimit``. Layers without pagination (``advancedQueryCapabilities.supportsPagination`` false,
  servers before 10.3) ignore the offset and answer their first page again: they are paged by object ids
  (``returnIdsOnly``, never capped, then ``objectIds`` chunks).
- Filters go to the server as ``field = 'value'`` (numbers unquoted for numeric fields: a database refuses a text
  compared with a number), and text filters are checked again here, since some databases (SQL Server behind
  ArcGIS Online) compare text case-insensitively and the contract is an exact text comparison. Date filters are
  only checked here, on the ISO strings the features carry.
- A point is sent as an intersecting point, then kept only when the geometry covers it (the server's tolerance
  would let in lines passing nearby), as ``geojsonfile.matches`` does.
- The layer metadata (fields, object id field, page size, pagination) is read once per layer and cached; a
  refused query drops it, so that a layer whose schema changed is read again on the next call.
- The token is a query parameter (or a form field when the call is a POST): the outbound client logs URLs without
  query values and does not log form bodies.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import shapely
import shapely.geometry
import structlog
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from connectors.sig.coordinates import reproject, transformer
from connectors.sig.layers.features import Feature, FeatureError, feature_from_geojson
from connectors.sig.layers.geojsonfile import matches
from connectors.sig.layers.provider import DEFAULT_MAX_FEATURES, FeatureBatch, LayerInfo, LayerQuery, TooManyFeatures
from passerelle import NotFound, UpstreamError, WrongParameter, run_sync
from passerelle.http import HttpClient, Response, redact_url

__all__ = ["ArcGISProvider", "esri_geometry"]

logger = structlog.get_logger("connectors.sig.arcgis")

WGS84 = 4326
# Longer URLs go as form POSTs: some proxies and IIS in front of ArcGIS Server refuse URLs past 2 048 characters.
URL_LIMIT = 2000
METADATA_CONCURRENCY = 4  # layer descriptions fetched at once by layers(): a town's server is small
DEFAULT_PAGE = 1000  # ArcGIS's own default maxRecordCount, when a layer does not say

GEOMETRY_TYPES = {
    "esriGeometryPoint": "Point",
    "esriGeometryMultipoint": "MultiPoint",
    "esriGeometryPolyline": "LineString",
    "esriGeometryPolygon": "Polygon",
    "esriGeometryEnvelope": "Polygon",
}
# Esri's own codes for EPSG systems, found in wkid when a server gives no latestWkid.
ESRI_WKIDS = {102100: 3857, 102113: 3857, 900913: 3857, 102110: 2154}
NUMERIC_FIELDS = frozenset(
    {
        "esriFieldTypeOID",
        "esriFieldTypeInteger",
        "esriFieldTypeSmallInteger",
        "esriFieldTypeBigInteger",
        "esriFieldTypeDouble",
        "esriFieldTypeSingle",
    }
)
TEXT_FIELDS = frozenset({"esriFieldTypeString", "esriFieldTypeGUID", "esriFieldTypeGlobalID"})
DATE_FIELD = "esriFieldTypeDate"
SKIPPED_LAYER_TYPES = frozenset({"Group Layer", "Raster Layer", "Raster Catalog Layer", "Mosaic Layer"})

# Usually …/rest/services/[<folder>/]<service>/FeatureServer; a reverse proxy may publish it under another path.
_SERVICE_PATH = re.compile(r"/[^/]+/(?:FeatureServer|MapServer)$", re.IGNORECASE)
_LAYER_PATH = re.compile(r"/(?:FeatureServer|MapServer)/\d+(?:/query)?$", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _LayerMeta:
    id: int
    name: str
    description: str
    geometry_type: str | None
    object_id_field: str
    fields: dict[str, str]  # name -> esri type, in the server's order
    max_record_count: int
    by_offset: bool  # resultOffset paging works (pagination and orderBy supported)
    extent: Any

    def field(self, name: str) -> tuple[str, str] | None:
        if name in self.fields:
            return name, self.fields[name]
        wanted = name.casefold()  # ArcGIS field names are case-insensitive
        for known, kind in self.fields.items():
            if known.casefold() == wanted:
                return known, kind
        return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to ask the server for one query, and what to check on the hub's side."""

    params: dict[str, str]  # where and the spatial filter
    out_fields: str
    kept: list[tuple[str, str]] | None  # (the name asked, the field's name) of the properties to keep
    local: LayerQuery | None  # checked on each feature, when the server's answer is not exact enough


@dataclass(slots=True)
class _Page:
    features: list[Feature] = field(default_factory=list)
    count: int = 0  # features the server returned, before the checks on the hub's side
    ids: set[Any] = field(default_factory=set)
    without_geometry: int = 0


class ArcGISProvider:
    """A :class:`~connectors.sig.layers.provider.Provider` over one ArcGIS FeatureServer or MapServer."""

    def __init__(
        self,
        http: HttpClient,
        service_url: str,
        *,
        token: str | None = None,
        page_size: int | None = None,
        max_features: int = DEFAULT_MAX_FEATURES,
    ) -> None:
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_features < 1:
            raise ValueError("max_features must be at least 1")
        self.http = http
        self.service_url = _service_url(service_url)
        self.token = token or None
        self.page_size = page_size
        self.max_features = max_features
        self._service: dict[str, Any] | None = None
        self._metadata: dict[int, _LayerMeta] = {}

    def __repr__(self) -> str:
        return f"<ArcGISProvider {redact_url(self.service_url)}>"

    # -- the contract ----------------------------------------------------------------------------------------------

    async def layers(self) -> list[LayerInfo]:
        service = await self._fetch_service()
        ids = [summary["id"] for summary in _layer_summaries(service)]
        semaphore = asyncio.Semaphore(METADATA_CONCURRENCY)

        async def describe(ident: int) -> _LayerMeta:
            async with semaphore:
                return await self._fetch_metadata(ident)

        # Every description is awaited before an error is raised: none is left running unobserved.
        results = await asyncio.gather(*(describe(ident) for ident in ids), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [_layer_info(meta) for meta in results if isinstance(meta, _LayerMeta)]

    async def features(self, query: LayerQuery) -> FeatureBatch:
        meta, cached = await self._layer(query.layer)
        if query.limit is not None and query.limit <= 0:
            return FeatureBatch([], number_matched=None)
        try:
            plan = _plan(meta, query)
        except WrongParameter:
            if not cached:
                raise
            # The field may have been added since the description was read.
            meta = await self._fetch_metadata(meta.id)
            plan = _plan(meta, query)
        if plan is None:
            found: list[Feature] = []
        elif meta.by_offset:
            found = await self._by_offset(meta, plan, query.limit)
        else:
            found = await self._by_ids(meta, plan, query.limit)
        return FeatureBatch(found, number_matched=len(found) if query.limit is None else None)

    # -- paging ----------------------------------------------------------------------------------------------------

    def _page_size(self, meta: _LayerMeta) -> int:
        return min(self.page_size or meta.max_record_count, meta.max_record_count)

    async def _by_offset(self, meta: _LayerMeta, plan: _Plan, limit: int | None) -> list[Feature]:
        found: list[Feature] = []
        offset = 0
        page_size = self._page_size(meta)
        while True:
            wanted = page_size if limit is None else min(page_size, limit - len(found))
            params = {
                **plan.params,
                "outFields": plan.out_fields,
                "returnGeometry": "true",
                "outSR": str(WGS84),
                "orderByFields": f"{meta.object_id_field} ASC",
                "resultOffset": str(offset),
                "resultRecordCount": str(wanted),
            }
            body = await self._query(meta, params)
            page = await run_sync(_convert, body, meta, plan)
            _note_skipped(meta, page)
            found.extend(page.features)
            offset += page.count
            if limit is not None and len(found) >= limit:
                return found[:limit]
            if offset > self.max_features:
                raise self._too_many(meta, None)
            if not body.get("exceededTransferLimit"):
                return found
            if page.count == 0:
                # Stepping by what came back would ask the same page for ever.
                raise UpstreamError(
                    f"the ArcGIS server says more features of layer {meta.id} ({meta.name}) remain past "
                    f"{offset} but returned none"
                )
            if offset == page.count and limit is None:
                # One count on the first full page spares fetching tens of thousands of features to then refuse.
                counted = await self._query(meta, {**plan.params, "returnCountOnly": "true"})
                total = counted.get("count")
                if isinstance(total, int) and total > self.max_features:
                    raise self._too_many(meta, total)

    async def _by_ids(self, meta: _LayerMeta, plan: _Plan, limit: int | None) -> list[Feature]:
        body = await self._query(meta, {**plan.params, "returnIdsOnly": "true"})
        raw_ids = body.get("objectIds") or []
        if not isinstance(raw_ids, list):
            raise UpstreamError(f"the ArcGIS server's object ids of layer {meta.id} ({meta.name}) are not a list")
        ids = sorted({_oid(value) for value in raw_ids}, key=_oid_order)
        if limit is None and len(ids) > self.max_features:
            raise self._too_many(meta, len(ids))
        if limit is not None and plan.local is None:
            ids = ids[:limit]
        found: list[Feature] = []
        fetched = 0
        chunk = self._page_size(meta)
        for start in range(0, len(ids), chunk):
            pending = ids[start : start + chunk]
            while pending:
                params = {
                    "objectIds": ",".join(str(ident) for ident in pending),
                    "outFields": plan.out_fields,
                    "returnGeometry": "true",
                    "outSR": str(WGS84),
                }
                answer = await self._query(meta, params)
                page = await run_sync(_convert, answer, meta, plan)
                _note_skipped(meta, page)
                found.extend(page.features)
                fetched += page.count
                if limit is not None and len(found) >= limit:
                    return found[:limit]
                if fetched > self.max_features:
                    raise self._too_many(meta, None)
                # A server capping below its declared maxRecordCount: ask again for the ids it left out. Ids it
                # does not answer at all were deleted since returnIdsOnly.
                if not answer.get("exceededTransferLimit") or not page.ids:
                    break
                pending = [ident for ident in pending if ident not in page.ids]
        return found

    def _too_many(self, meta: _LayerMeta, total: int | None) -> TooManyFeatures:
        held = f"{total} features match" if total is not None else "more features match"
        return TooManyFeatures(
            f"layer {meta.id} ({meta.name}) of the ArcGIS service: {held}, more than {self.max_features}; "
            "narrow the query (a filter, a box)"
        )

    # -- metadata --------------------------------------------------------------------------------------------------

    async def _fetch_service(self) -> dict[str, Any]:
        body = await self._call(self.service_url, {}, "the service description")
        if not isinstance(body.get("layers"), list):
            raise UpstreamError(
                f"{redact_url(self.service_url)} answers no layer list: is it a FeatureServer or MapServer?"
            )
        self._service = body
        return body

    async def _fetch_metadata(self, ident: int) -> _LayerMeta:
        body = await self._call(f"{self.service_url}/{ident}", {}, f"the description of layer {ident}")
        meta = _layer_meta(ident, body)
        self._metadata[ident] = meta
        return meta

    async def _layer(self, name: str) -> tuple[_LayerMeta, bool]:
        """The layer's description, and whether it came from the cache."""
        text = name.strip()
        ident = int(text) if text.isdigit() and int(text) in self._metadata else await self._layer_id(text)
        cached = self._metadata.get(ident)
        if cached is not None:
            return cached, True
        return await self._fetch_metadata(ident), False

    async def _layer_id(self, name: str) -> int:
        refreshed = self._service is None
        service = self._service if self._service is not None else await self._fetch_service()
        while True:
            summaries = _layer_summaries(service)
            ident = _find_layer(summaries, name)
            if ident is not None:
                return ident
            if refreshed:
                listed = ", ".join(f"{summary['id']} ({summary.get('name', '')})" for summary in summaries)
                raise NotFound(f"no layer '{name}' in the ArcGIS service; its layers: {listed or 'none'}")
            # The cached listing may predate a layer added since.
            service = await self._fetch_service()
            refreshed = True

    # -- calls -----------------------------------------------------------------------------------------------------

    async def _query(self, meta: _LayerMeta, params: dict[str, str]) -> dict[str, Any]:
        try:
            return await self._call(f"{self.service_url}/{meta.id}/query", params, "the query")
        except UpstreamError:
            self._metadata.pop(meta.id, None)
            raise

    async def _call(self, url: str, params: Mapping[str, str], what: str) -> dict[str, Any]:
        sent = {**params, "f": "json"}
        if self.token is not None:
            sent["token"] = self.token
        if len(url) + 1 + len(urlencode(sent)) > URL_LIMIT:
            response = await self.http.post(url, data=sent, idempotent=True)
        else:
            response = await self.http.get(url, params=sent)
        return self._answer(response, what)

    def _answer(self, response: Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except UpstreamError:
            html = response.body.lstrip()[:1] == b"<" or "html" in str(response.headers.get("Content-Type", ""))
            kind = "an HTML page" if html else "something that is not JSON"
            raise UpstreamError(
                f"the ArcGIS server answered {what} with {kind} (HTTP {response.status}): is "
                f"{redact_url(self.service_url)} the URL of a FeatureServer or MapServer?"
            ) from None
        if isinstance(body, dict) and "error" in body:
            raise _refusal(body["error"], what)
        if response.status >= 400:
            raise UpstreamError(f"the ArcGIS server answered {what} with HTTP {response.status}")
        if not isinstance(body, dict):
            raise UpstreamError(f"the ArcGIS server answered {what} with JSON that is not an object")
        return body


# -- URLs, metadata ------------------------------------------------------------------------------------------------


def _service_url(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the ArcGIS service URL must be an http:// or https:// URL, not {redact_url(url)!r}")
    if parts.query or parts.fragment:
        raise ValueError(
            f"the ArcGIS service URL takes no query string (a token goes in the 'token' setting): {redact_url(url)}"
        )
    if not _SERVICE_PATH.search(path):
        hint = ""
        if _LAYER_PATH.search(path):
            hint = "; this one names a layer: remove the layer id from the URL and name the layer in queries"
        raise ValueError(
            f"{redact_url(url)} is not the URL of an ArcGIS service: it should end in "
            f"/rest/services/<service>/FeatureServer or /rest/services/<service>/MapServer{hint}"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _layer_summaries(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The service's feature layers (tables are listed apart, group and raster layers hold no features)."""
    found = []
    for summary in service.get("layers") or []:
        if not isinstance(summary, dict) or not isinstance(summary.get("id"), int):
            continue
        if summary.get("subLayerIds") or summary.get("type") in SKIPPED_LAYER_TYPES:
            continue
        found.append(summary)
    return found


def _find_layer(summaries: list[dict[str, Any]], name: str) -> int | None:
    if name.isdigit():
        return next((summary["id"] for summary in summaries if summary["id"] == int(name)), None)
    for same in (lambda title: title == name, lambda title: title.casefold() == name.casefold()):
        for summary in summaries:
            if same(str(summary.get("name", ""))):
                return int(summary["id"])
    return None


def _layer_meta(ident: int, body: Mapping[str, Any]) -> _LayerMeta:
    raw_fields = body.get("fields")
    if not isinstance(raw_fields, list):
        raise UpstreamError(f"the description of layer {ident} of the ArcGIS service has no field list")
    fields = {
        str(item["name"]): str(item.get("type", ""))
        for item in raw_fields
        if isinstance(item, dict) and item.get("name")
    }
    oid = body.get("objectIdField")
    if not oid:
        # Servers before 10.x name it only through the field type.
        oid = next((name for name, kind in fields.items() if kind == "esriFieldTypeOID"), None)
    if not oid:
        raise UpstreamError(f"layer {ident} of the ArcGIS service has no object id field: it cannot be paged")
    capabilities = body.get("advancedQueryCapabilities") or {}
    max_records = body.get("maxRecordCount")
    return _LayerMeta(
        id=ident,
        name=str(body.get("name") or ident),
        description=str(body.get("description") or ""),
        geometry_type=GEOMETRY_TYPES.get(str(body.get("geometryType"))),
        object_id_field=str(oid),
        fields=fields,
        max_record_count=max_records if isinstance(max_records, int) and max_records > 0 else DEFAULT_PAGE,
        # Servers without advancedQueryCapabilities (before 10.3) cannot page by offset.
        by_offset=capabilities.get("supportsPagination") is True and capabilities.get("supportsOrderBy", True),
        extent=body.get("extent"),
    )


def _layer_info(meta: _LayerMeta) -> LayerInfo:
    return LayerInfo(
        name=str(meta.id),
        title=meta.name,
        description=meta.description,
        geometry_type=meta.geometry_type,
        bbox=_wgs84_bbox(meta.extent),
        fields=tuple(meta.fields),
    )


def _epsg(reference: Any) -> int | None:
    if not isinstance(reference, dict):
        return None
    for key in ("latestWkid", "wkid"):
        value = reference.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return ESRI_WKIDS.get(value, value)
    return None


def _wgs84_bbox(extent: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(extent, dict):
        return None
    try:
        box = [float(extent[key]) for key in ("xmin", "ymin", "xmax", "ymax")]
    except (KeyError, TypeError, ValueError):
        return None
    epsg = _epsg(extent.get("spatialReference"))
    if epsg is None or not all(math.isfinite(value) for value in box):
        return None  # an empty layer's extent is NaN; a WKT-only reference is not worth guessing
    if epsg != WGS84:
        try:
            box = list(transformer(epsg, WGS84).transform_bounds(*box))
        except (CRSError, ProjError, ValueError):
            return None
    if not all(math.isfinite(value) for value in box):
        return None
    west, south, east, north = (round(value, 7) for value in box)
    return west, south, east, north


# -- queries -------------------------------------------------------------------------------------------------------


def _plan(meta: _LayerMeta, query: LayerQuery) -> _Plan | None:
    """The query's parameters, or None when nothing can match (a number filter on a numeric field that is no number)."""
    clauses: list[str] = []
    checked: dict[str, str] = {}
    for key, wanted in query.filters.items():
        name, kind = _known_field(meta, key, "filter")
        if kind in NUMERIC_FIELDS:
            number = _number(wanted)
            if number is None:
                return None
            clauses.append(f"{name} = {number}")
        elif kind in TEXT_FIELDS:
            escaped = wanted.replace("'", "''")
            clauses.append(f"{name} = '{escaped}'")
            checked[name] = wanted
        else:
            checked[name] = wanted
    params = {"where": " AND ".join(clauses) or "1=1"}
    if query.point is not None:
        params.update(
            geometry=f"{_coordinate(query.point[0])},{_coordinate(query.point[1])}",
            geometryType="esriGeometryPoint",
            inSR=str(WGS84),
            spatialRel="esriSpatialRelIntersects",
        )
    elif query.bbox is not None:
        params.update(
            geometry=",".join(_coordinate(value) for value in query.bbox),
            geometryType="esriGeometryEnvelope",
            inSR=str(WGS84),
            spatialRel="esriSpatialRelIntersects",
        )
    local = None
    if query.point is not None or checked:
        # With a point sent, the box (if any) is checked here: a query takes one geometry.
        local = LayerQuery(layer=query.layer, point=query.point, bbox=query.bbox, filters=checked)
    if query.properties is None:
        return _Plan(params, "*", None, local)
    kept = [(asked, _known_field(meta, asked, "property")[0]) for asked in query.properties]
    wanted_fields = [meta.object_id_field, *(name for _, name in kept), *checked]
    return _Plan(params, ",".join(dict.fromkeys(wanted_fields)), kept, local)


def _known_field(meta: _LayerMeta, name: str, role: str) -> tuple[str, str]:
    found = meta.field(name)
    if found is None:
        raise WrongParameter(
            f"{role} '{name}': layer {meta.id} ({meta.name}) has no such field; its fields: {', '.join(meta.fields)}"
        )
    return found


def _number(text: str) -> str | None:
    """A numeric literal for a where clause, from the text a filter compares with."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    number = Decimal(text)
    if abs(number.adjusted()) > 40:
        return None  # no field holds such a number, and "1e999999999" written out would fill the memory
    # Decimal keeps what was written (no binary float noise) and, formatted so, never writes an exponent.
    return format(number, "f")


def _coordinate(value: float) -> str:
    return format(float(value), ".9f").rstrip("0").rstrip(".")


def _oid(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _oid_order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))


def _note_skipped(meta: _LayerMeta, page: _Page) -> None:
    if page.without_geometry:
        logger.warning(
            "ArcGIS features without geometry left out", layer=meta.id, name=meta.name, count=page.without_geometry
        )


# -- features ------------------------------------------------------------------------------------------------------


def _convert(body: Mapping[str, Any], meta: _LayerMeta, plan: _Plan) -> _Page:
    """One page of an ``f=json`` answer as features (run in the thread pool: thousands of geometries)."""
    raw_features = body.get("features")
    if not isinstance(raw_features, list):
        raise UpstreamError(f"the ArcGIS server's answer to the query of layer {meta.id} ({meta.name}) has no features")
    answered_fields = body.get("fields")
    if isinstance(answered_fields, list):
        dates = {
            item.get("name") for item in answered_fields if isinstance(item, dict) and item.get("type") == DATE_FIELD
        }
    else:
        dates = {name for name, kind in meta.fields.items() if kind == DATE_FIELD}
    oid_field = str(body.get("objectIdFieldName") or meta.object_id_field)
    source = _epsg(body.get("spatialReference")) or WGS84
    page = _Page(count=len(raw_features))
    for position, raw in enumerate(raw_features):
        attributes = dict(raw.get("attributes") or {}) if isinstance(raw, dict) else {}
        for name in dates:
            if name in attributes:
                attributes[name] = _iso(attributes[name])
        ident = _oid(_attribute(attributes, oid_field))
        if ident is not None:
            page.ids.add(ident)
        label = ident if ident is not None else f"#{position + 1}"
        try:
            geometry = esri_geometry(raw.get("geometry") if isinstance(raw, dict) else None)
            if geometry is None:
                page.without_geometry += 1
                continue
            if source != WGS84:
                # outSR=4326 was asked; a server that ignored it says so in spatialReference.
                geometry = reproject(geometry, source, WGS84)
            feature = feature_from_geojson(
                {
                    "type": "Feature",
                    "id": ident,
                    "geometry": shapely.geometry.mapping(geometry),
                    "properties": attributes,
                },
                fallback_id=f"{meta.id}.{position + 1}",
            )
        except (FeatureError, ValueError) as error:
            raise UpstreamError(
                f"layer {meta.id} ({meta.name}) of the ArcGIS service, feature {label}: {error}"
            ) from None
        if plan.local is not None and not matches(feature, plan.local):
            continue
        if plan.kept is not None:
            properties = {asked: attributes.get(name) for asked, name in plan.kept}
            feature = Feature(feature.id, feature.geometry, properties)
        page.features.append(feature)
    return page


def _attribute(attributes: Mapping[str, Any], name: str) -> Any:
    if name in attributes:
        return attributes[name]
    wanted = name.casefold()
    return next((value for key, value in attributes.items() if key.casefold() == wanted), None)


def _iso(value: Any) -> Any:
    """An esriFieldTypeDate value (epoch milliseconds, UTC) as an ISO 8601 string."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return value
    try:
        moment = _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        return value
    return moment.isoformat(timespec="seconds" if moment.microsecond == 0 else "milliseconds")


def esri_geometry(raw: Any) -> BaseGeometry | None:
    """An Esri JSON geometry as a shapely one (None for a null or empty geometry); FeatureError when unreadable.

    Only x and y are read: z and m values, when the server sends them, are left out."""
    if not isinstance(raw, dict) or not raw:
        return None
    try:
        if "x" in raw:
            x, y = raw.get("x"), raw.get("y")
            if x is None or y is None or x == "NaN" or y == "NaN":
                return None  # ArcGIS's empty point
            return shapely.Point(float(x), float(y))
        if "points" in raw:
            points = [(float(point[0]), float(point[1])) for point in raw["points"] or []]
            return shapely.MultiPoint(points) if points else None
        if "paths" in raw:
            lines = [[(float(point[0]), float(point[1])) for point in path] for path in raw["paths"] or [] if path]
            if not lines:
                return None
            return shapely.LineString(lines[0]) if len(lines) == 1 else shapely.MultiLineString(lines)
        if "rings" in raw:
            return _polygon(raw["rings"] or [])
        if "xmin" in raw:
            if raw.get("xmin") in (None, "NaN"):
                return None
            return shapely.box(float(raw["xmin"]), float(raw["ymin"]), float(raw["xmax"]), float(raw["ymax"]))
    except (TypeError, ValueError, IndexError, KeyError, shapely.errors.ShapelyError) as error:
        raise FeatureError(f"the geometry cannot be read: {error}") from None
    if "curveRings" in raw or "curvePaths" in raw:
        raise FeatureError("the geometry has true curves, which are not supported")
    raise FeatureError(f"unknown Esri geometry (members {', '.join(sorted(raw))})")


def _polygon(rings: list[Any]) -> BaseGeometry | None:
    """Esri rings as a (Multi)Polygon: clockwise rings are outer rings, counter-clockwise ones holes, each hole
    belonging to the smallest outer ring around it (Esri JSON does not say which)."""
    shells: list[shapely.LinearRing] = []
    holes: list[shapely.LinearRing] = []
    for ring in rings:
        coords = [(float(point[0]), float(point[1])) for point in ring]
        if len(coords) < 3:
            continue  # a degenerate ring encloses nothing
        linear = shapely.LinearRing(coords)
        (holes if shapely.is_ccw(linear) else shells).append(linear)
    if not shells:
        # Only counter-clockwise rings: a writer that ignored Esri's orientation; they cannot all be holes.
        shells, holes = holes, []
    outers = [shapely.Polygon(shell) for shell in shells]
    areas = [outer.area for outer in outers]
    inside: list[list[shapely.LinearRing]] = [[] for _ in shells]
    for hole in holes:
        probe = shapely.Polygon(hole).representative_point()
        around = [index for index, outer in enumerate(outers) if outer.contains(probe)]
        if around:
            inside[min(around, key=lambda index: areas[index])].append(hole)
        else:
            # A lone counter-clockwise ring is an outer ring, as ArcGIS itself reads it.
            shells.append(hole)
            outers.append(shapely.Polygon(hole))
            areas.append(outers[-1].area)
            inside.append([])
    if not shells:
        return None
    polygons = [shapely.Polygon(shell, interiors) for shell, interiors in zip(shells, inside, strict=True)]
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _refusal(error: Any, what: str) -> UpstreamError:
    """The hub's error for an ArcGIS ``{"error": {code, message, details}}`` body (sent with HTTP 200)."""
    if not isinstance(error, dict):
        return UpstreamError(f"the ArcGIS server refused {what}: {error}")
    code = error.get("code")
    message = str(error.get("message") or "").strip()
    details = [str(item) for item in error.get("details") or [] if str(item).strip() and str(item) != message]
    data = {"code": code, "message": message, "details": details}
    # Codes are compared, never messages: ArcGIS Online and ArcGIS Server word them differently.
    if code == 499:
        return UpstreamError(
            f"the ArcGIS server requires a token ({message or 'Token Required'}): set the 'token' configuration",
            data=data,
        )
    if code == 498:
        return UpstreamError(
            f"the ArcGIS server refused the token ({message or 'Invalid Token'}): it is invalid or has expired; "
            "check the 'token' configuration",
            data=data,
        )
    if code == 403:
        return UpstreamError(
            f"the ArcGIS server denied access ({message or 'Forbidden'}): the 'token' configuration may lack the "
            "rights to this service",
            data=data,
        )
    text = message or f"error {code}"
    if details:
        text += f" ({'; '.join(details)})"
    return UpstreamError(f"the ArcGIS server refused {what}: {text}", data=data)
