"""The aiohttp application: the services directory, service and layer metadata, `query`, tokens, /_simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from aiohttp import web

from simulators.controls import add_controls

from .geometry import GEOMETRY_TYPES, SPATIAL_RELATIONS, GeometryError, esri_json, geojson, parse_geometry, parse_wkid
from .geometry import to_storage as geometry_to_storage
from .model import WGS84, Layer, Service, epsg_of, load_services, reproject, spatial_reference
from .where import WhereError, compile_where

MODES = ("normal", "500", "error200", "slow", "short_pages")
CURRENT_VERSION = 11.1
FULL_VERSION = "11.1.0"
PREFIX = "/arcgis/rest"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Params = Mapping[str, str]
_compact = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

UNABLE = "Unable to complete operation."


class ArcGISError(Exception):
    """An error ArcGIS reports in the body of an HTTP 200 answer: `{"error": {"code", "message", "details"}}`."""

    def __init__(self, code: int, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid_url() -> ArcGISError:
    return ArcGISError(400, "Invalid URL", ["Invalid URL"])


def invalid_parameter(name: str) -> ArcGISError:
    return ArcGISError(400, UNABLE, [f"'{name}' parameter is invalid"])


@dataclass
class State:
    services: dict[str, Service]
    token: str | None
    token_expires: float | None
    max_record_count: int
    clock: Callable[[], float]
    mode: str = "normal"
    delay: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[str] = field(default_factory=Counter)


STATE = web.AppKey("arcgis_state", State)


# -- answers ------------------------------------------------------------------------------------------------------


def _respond(state: State, body: dict[str, Any], f: str, *, geo: bool = False) -> web.Response:
    if "error" in body:
        state.error_codes[str(body["error"]["code"])] += 1
    if f == "pjson":
        # ArcGIS serves its "pretty JSON" as text, for browsers to show rather than download.
        return web.Response(text=json.dumps(body, ensure_ascii=False, indent=2), content_type="text/plain")
    content_type = "application/geo+json" if geo and "error" not in body else "application/json"
    return web.Response(text=_compact(body), content_type=content_type)


def _html_page(title: str) -> web.Response:
    # The default format is the HTML services directory; a client that forgets f=json gets a page, not JSON.
    page = (
        f"<html><head><title>{title} (ArcGIS REST Services Directory)</title></head><body>"
        f"<h2>{title}</h2><p>The HTML view is not simulated: add <code>f=json</code>.</p></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def _params(request: web.Request) -> dict[str, str]:
    """Query string and form body merged (the body wins); ArcGIS matches parameter names case-insensitively."""
    params = {key.lower(): value for key, value in request.query.items()}
    if request.method == "POST":
        form = await request.post()
        params.update({key.lower(): value for key, value in form.items() if isinstance(value, str)})
    return params


def _token_of(request: web.Request, params: Params) -> str | None:
    header = request.headers.get("X-Esri-Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return params.get("token") or None


def _check_token(state: State, request: web.Request, params: Params) -> None:
    if state.token is None:
        return
    given = _token_of(request, params)
    if given is None:
        raise ArcGISError(499, "Token Required")
    if given != state.token or (state.token_expires is not None and state.clock() >= state.token_expires):
        raise ArcGISError(498, "Invalid Token")


@web.middleware
async def _upstream_behaviour(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_simulator/"):
        return await handler(request)
    state = request.app[STATE]
    state.calls[request.path] += 1
    if state.mode == "slow":
        await asyncio.sleep(state.delay)
    response: web.StreamResponse
    if state.mode == "500":
        response = web.Response(
            status=500,
            text="<html><head><title>Error</title></head><body><h1>500 Internal Server Error</h1></body></html>",
            content_type="text/html",
        )
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
    state.statuses[str(response.status)] += 1
    return response


# -- metadata -----------------------------------------------------------------------------------------------------


def _directory(state: State) -> dict[str, Any]:
    return {
        "currentVersion": CURRENT_VERSION,
        "folders": [],
        "services": [{"name": service.name, "type": service.kind} for service in state.services.values()],
    }


def _layer_summary(layer: Layer) -> dict[str, Any]:
    return {
        "id": layer.id,
        "name": layer.name,
        "parentLayerId": -1,
        "defaultVisibility": True,
        "subLayerIds": None,
        "minScale": 0,
        "maxScale": 0,
        "type": "Feature Layer",
        "geometryType": layer.esri_geometry_type,
    }


def _service_extent(service: Service) -> dict[str, Any]:
    extents = [layer.extent() for layer in service.layers if layer.wkid == service.wkid and layer.records]
    if not extents:
        return service.layers[0].extent()
    return {
        "xmin": min(extent["xmin"] for extent in extents),
        "ymin": min(extent["ymin"] for extent in extents),
        "xmax": max(extent["xmax"] for extent in extents),
        "ymax": max(extent["ymax"] for extent in extents),
        "spatialReference": spatial_reference(service.wkid),
    }


def _service_info(state: State, service: Service) -> dict[str, Any]:
    extent = _service_extent(service)
    info: dict[str, Any] = {"currentVersion": CURRENT_VERSION, "serviceDescription": ""}
    if service.kind == "MapServer":
        info.update(mapName="Layers", description="", copyrightText="")
    else:
        info.update(hasVersionedData=False, supportsDisconnectedEditing=False, description="", copyrightText="")
    info.update(
        spatialReference=spatial_reference(service.wkid),
        initialExtent=extent,
        fullExtent=extent,
        units="esriDecimalDegrees" if epsg_of(service.wkid) == WGS84 else "esriMeters",
        maxRecordCount=max(_max_records(state, layer) for layer in service.layers),
        supportedQueryFormats="JSON, geoJSON",
        capabilities="Map,Query,Data" if service.kind == "MapServer" else "Query",
        layers=[_layer_summary(layer) for layer in service.layers],
        tables=[],
    )
    return info


def _max_records(state: State, layer: Layer) -> int:
    return layer.max_record_count or state.max_record_count


def _layer_info(state: State, layer: Layer) -> dict[str, Any]:
    display = next((item.name for item in layer.fields if item.type == "esriFieldTypeString"), layer.object_id_field)
    return {
        "currentVersion": CURRENT_VERSION,
        "id": layer.id,
        "name": layer.name,
        "type": "Feature Layer",
        "description": "",
        "geometryType": layer.esri_geometry_type,
        "sourceSpatialReference": spatial_reference(layer.wkid),
        "copyrightText": "",
        "parentLayer": None,
        "subLayers": [],
        "minScale": 0,
        "maxScale": 0,
        "defaultVisibility": True,
        "extent": layer.extent(),
        "hasAttachments": False,
        "htmlPopupType": "esriServerHTMLPopupTypeNone",
        "displayField": display,
        "typeIdField": None,
        "fields": [item.describe() for item in layer.fields],
        "relationships": [],
        "canModifyLayer": False,
        "canScaleSymbols": False,
        "hasLabels": False,
        "capabilities": "Query",
        "maxRecordCount": _max_records(state, layer),
        "supportsStatistics": False,
        "supportsAdvancedQueries": True,
        "supportedQueryFormats": "JSON, geoJSON",
        "isDataVersioned": False,
        "useStandardizedQueries": True,
        "advancedQueryCapabilities": {
            "useStandardizedQueries": True,
            "supportsStatistics": False,
            "supportsHavingClause": False,
            "supportsOrderBy": True,
            "supportsDistinct": False,
            "supportsCountDistinct": False,
            "supportsPagination": layer.supports_pagination,
            "supportsTrueCurve": False,
            "supportsReturningQueryExtent": False,
            "supportsQueryWithDistance": False,
            "supportsSqlExpression": False,
        },
        "objectIdField": layer.object_id_field,
        "globalIdField": "",
        "supportsCoordinatesQuantization": False,
    }


# -- query --------------------------------------------------------------------------------------------------------


def _flag(params: Params, name: str, default: bool) -> bool:
    value = params.get(name.lower(), "").strip().lower()
    if not value:
        return default
    return value == "true"


def _count(params: Params, name: str) -> int | None:
    value = params.get(name.lower(), "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise invalid_parameter(name) from None
    if number < 0:
        raise invalid_parameter(name)
    return number


def _out_fields(layer: Layer, params: Params) -> list[str]:
    value = params.get("outfields", "").strip()
    if not value:
        # Without outFields, ArcGIS returns the object id alone: every other attribute must be asked for.
        return [layer.object_id_field]
    names: list[str] = []
    for name in (part.strip() for part in value.split(",")):
        if not name:
            continue
        if name == "*":
            return [item.name for item in layer.fields]
        found = layer.field(name)
        if found is None:
            raise ArcGISError(400, UNABLE, [f"Invalid field: {name}"])
        if found.name not in names:
            names.append(found.name)
    return names or [layer.object_id_field]


def _order(layer: Layer, params: Params) -> list[tuple[str, bool]]:
    value = params.get("orderbyfields", "").strip()
    keys: list[tuple[str, bool]] = []
    if not value:
        return keys
    for part in value.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise invalid_parameter("orderByFields")
        found = layer.field(words[0])
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if found is None or direction not in ("ASC", "DESC"):
            raise invalid_parameter("orderByFields")
        keys.append((found.name, direction == "DESC"))
    return keys


def _sorted(layer: Layer, indices: list[int], keys: list[tuple[str, bool]]) -> list[int]:
    """Object id order, then each key from the last to the first (stable sorts); NULL sorts first ascending."""
    result = sorted(indices, key=lambda index: layer.oids[index])
    for name, descending in reversed(keys):
        result.sort(key=partial(_sort_key, layer.records, name), reverse=descending)
    return result


def _sort_key(records: list[dict[str, Any]], name: str, index: int) -> tuple[bool, Any]:
    value = records[index][name]
    return (value is not None, value if value is not None else 0)


def _object_ids(params: Params) -> set[int] | None:
    value = params.get("objectids", "").strip()
    if not value:
        return None
    try:
        return {int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise invalid_parameter("objectIds") from None


def _spatial_mask(layer: Layer, params: Params) -> np.ndarray | None:
    text = params.get("geometry", "").strip()
    if not text:
        return None
    geometry_type = params.get("geometrytype", "").strip() or "esriGeometryEnvelope"
    if geometry_type not in GEOMETRY_TYPES:
        raise invalid_parameter("geometryType")
    relation = params.get("spatialrel", "").strip() or "esriSpatialRelIntersects"
    if relation not in SPATIAL_RELATIONS:
        raise invalid_parameter("spatialRel")
    in_sr = params.get("insr", "").strip()
    try:
        in_wkid = parse_wkid(in_sr, "inSR") if in_sr else None
        geometry, wkid = parse_geometry(text, geometry_type, in_wkid)
        query = geometry_to_storage(geometry, wkid if wkid is not None else layer.wkid, layer.wkid)
    except GeometryError as exc:
        raise invalid_parameter(exc.parameter) from None
    if not layer.records:
        return np.zeros(0, dtype=bool)
    return np.asarray(SPATIAL_RELATIONS[relation](query, layer.geometry_array), dtype=bool)


def _query(state: State, service: Service, layer: Layer, params: Params, f: str) -> web.Response:
    where_text = params.get("where", "").strip()
    has_filter = bool(where_text or params.get("objectids", "").strip() or params.get("geometry", "").strip())
    if service.kind == "MapServer" and not has_filter:
        # Map services refuse a query with no filter at all (hosted feature services take it as 1=1).
        raise ArcGISError(400, UNABLE, ["Either 'where' or 'geometry' or 'objectIds' parameter must be specified"])
    try:
        where = compile_where(where_text or "1=1", layer)
    except WhereError:
        raise invalid_parameter("where") from None
    out_fields = _out_fields(layer, params)
    keys = _order(layer, params)
    offset = _count(params, "resultOffset")
    record_count = _count(params, "resultRecordCount")
    object_ids = _object_ids(params)
    out_sr = params.get("outsr", "").strip()
    try:
        out_wkid = parse_wkid(out_sr, "outSR") if out_sr else layer.wkid
    except GeometryError as exc:
        raise invalid_parameter(exc.parameter) from None
    mask = _spatial_mask(layer, params)

    matched = [
        index
        for index, record in enumerate(layer.records)
        if (mask is None or mask[index])
        and (object_ids is None or layer.oids[index] in object_ids)
        and where(record) is True
    ]
    if _flag(params, "returnCountOnly", False):
        return _respond(state, {"count": len(matched)}, f)
    ordered = _sorted(layer, matched, keys)
    if _flag(params, "returnIdsOnly", False):
        # The id list is not capped by maxRecordCount: it is how clients page layers without pagination.
        ids = [layer.oids[index] for index in ordered]
        return _respond(state, {"objectIdFieldName": layer.object_id_field, "objectIds": ids}, f)

    limit = _max_records(state, layer)
    if layer.supports_pagination:
        start = offset or 0
        size = min(record_count, limit) if record_count else limit
    else:
        # Servers without pagination ignore resultOffset/resultRecordCount and answer the first page again.
        start, size = 0, limit
    if state.mode == "short_pages":
        # ArcGIS may return fewer records than asked, and even none, with exceededTransferLimit still set (its
        # spatial index filters after paging): the next offset is the previous one plus what came back.
        size = (size + 1) // 2
    page = ordered[start : start + size]
    exceeded = start + len(page) < len(ordered)
    return_geometry = _flag(params, "returnGeometry", True)
    if f == "geojson":
        body = _geojson_body(layer, page, out_fields, return_geometry, exceeded)
        return _respond(state, body, f, geo=True)
    return _respond(state, _json_body(layer, page, out_fields, return_geometry, out_wkid, exceeded), f)


def _json_body(
    layer: Layer, page: list[int], out_fields: list[str], return_geometry: bool, out_wkid: int, exceeded: bool
) -> dict[str, Any]:
    described = {item.name: item.describe() for item in layer.fields}
    body: dict[str, Any] = {"objectIdFieldName": layer.object_id_field, "globalIdFieldName": ""}
    if return_geometry:
        body["geometryType"] = layer.esri_geometry_type
        body["spatialReference"] = spatial_reference(out_wkid)
    body["fields"] = [_query_field(described[name]) for name in out_fields]
    features = []
    for index in page:
        record = layer.records[index]
        feature: dict[str, Any] = {"attributes": {name: record[name] for name in out_fields}}
        if return_geometry:
            feature["geometry"] = esri_json(reproject(layer.geometries[index], layer.wkid, out_wkid))
        features.append(feature)
    body["features"] = features
    if exceeded:
        body["exceededTransferLimit"] = True
    return body


def _query_field(described: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "type", "alias", "sqlType", "length", "domain", "defaultValue")
    return {key: described[key] for key in keys if key in described}


def _geojson_body(
    layer: Layer, page: list[int], out_fields: list[str], return_geometry: bool, exceeded: bool
) -> dict[str, Any]:
    features = []
    for index in page:
        record = layer.records[index]
        geometry = geojson(reproject(layer.geometries[index], layer.wkid, WGS84)) if return_geometry else None
        features.append(
            {
                "type": "Feature",
                "id": layer.oids[index],
                "geometry": geometry,
                "properties": {name: record[name] for name in out_fields},
            }
        )
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if exceeded:
        body["properties"] = {"exceededTransferLimit": True}
    return body


# -- routing ------------------------------------------------------------------------------------------------------


async def rest_info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = await _params(request)
    f = params.get("f", "").lower()
    if f not in ("json", "pjson", "geojson"):
        return _html_page("Info")
    auth: dict[str, Any] = {"isTokenBasedSecurity": state.token is not None}
    if state.token is not None:
        auth["tokenServicesUrl"] = f"{request.url.origin()}/arcgis/tokens/"
    return _respond(state, {"currentVersion": CURRENT_VERSION, "fullVersion": FULL_VERSION, "authInfo": auth}, f)


async def services_route(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = await _params(request)
    f = params.get("f", "").lower()
    parts = [part for part in request.match_info["tail"].split("/") if part]
    if f in ("", "html"):
        return _html_page("/".join(parts) or "Home")
    if f not in ("json", "pjson", "geojson"):
        return _respond(state, ArcGISError(400, UNABLE, ["'f' parameter is invalid"]).body(), f="json")
    try:
        return _route(state, request, params, parts, f)
    except ArcGISError as exc:
        return _respond(state, exc.body(), "pjson" if f == "pjson" else "json")


def _route(state: State, request: web.Request, params: Params, parts: list[str], f: str) -> web.Response:
    if not parts:
        return _respond(state, _directory(state), f)
    kind_at = next((i for i, part in enumerate(parts) if part in ("FeatureServer", "MapServer")), None)
    if kind_at is None or kind_at == 0:
        raise invalid_url()
    service = state.services.get("/".join(parts[:kind_at]))
    if service is None or service.kind != parts[kind_at]:
        raise invalid_url()
    _check_token(state, request, params)
    rest = parts[kind_at + 1 :]
    if not rest:
        return _respond(state, _service_info(state, service), f)
    if not rest[0].isdigit() or len(rest) > 2:
        raise invalid_url()
    layer = service.layer(int(rest[0]))
    if layer is None:
        raise invalid_url()
    if len(rest) == 1:
        return _respond(state, _layer_info(state, layer), f)
    if rest[1] != "query":
        raise invalid_url()
    if state.mode == "error200":
        raise ArcGISError(500, "Error performing query operation")
    return _query(state, service, layer, params, f)


def make_app(
    services: dict[str, Service] | None = None,
    *,
    token: str | None = None,
    token_ttl: float | None = None,
    max_record_count: int = 1000,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The simulator over `services` (default: `load_services()`, the dataset of tests/simulators/data).

    `token`: every service then requires it (`token=` or `X-Esri-Authorization: Bearer`); it expires `token_ttl`
    seconds after this call, by `clock`, so that a test can step time forward. `max_record_count` applies to layers
    that do not set their own.
    """
    if max_record_count < 1:
        raise ValueError("max_record_count must be positive")
    services = services if services is not None else load_services()
    expires = clock() + token_ttl if token is not None and token_ttl is not None else None
    # Long polygon geometries come in form-POST bodies; aiohttp's default limit is 1 MB.
    app = web.Application(middlewares=[_upstream_behaviour], client_max_size=10 * 1024 * 1024)
    app[STATE] = State(services, token, expires, max_record_count, clock)
    for method in ("GET", "POST"):
        app.router.add_route(method, PREFIX + "/info", rest_info)
        app.router.add_route(method, PREFIX + "/services{tail:(/.*)?}", services_route)
    add_controls(app, STATE, MODES, extra_stats=lambda state: {"error_codes": dict(state.error_codes)})
    return app
