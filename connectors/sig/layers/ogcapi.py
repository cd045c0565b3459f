"""A provider over an OGC API - Features (Part 1) server: pygeoapi, MapServer's ogcapi, GeoServer…

``/collections`` lists the layers; ``/collections/{id}/items`` answers GeoJSON, always in
CRS84 (lon, lat) in Part 1, so there is no axis-order question here. Paging follows the
``rel="next"`` links until there is none, since ``offset`` is a pygeoapi extension and
``limit`` is capped silently by servers (pygeoapi's ``max_items``).

Property filters are sent as ``prop=value`` query parameters (Part 1 allows them for the
collection's queryables) but a server ignores a parameter it does not know and answers
the whole collection, so every filter, the kept properties and the point (sent as a tiny
box) are applied again here with the semantics of :func:`matches`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urljoin

from connectors.sig.layers.features import Feature, FeatureError, feature_from_geojson
from connectors.sig.layers.geojsonfile import matches
from connectors.sig.layers.provider import DEFAULT_MAX_FEATURES, FeatureBatch, LayerInfo, LayerQuery, TooManyFeatures
from passerelle.envelope import NotFound, UpstreamError
from passerelle.http import HttpClient, Response, answer_excerpt

__all__ = ["OGCAPIProvider"]

# GeoJSON first; some servers (pygeoapi) send application/json while their links say geo+json.
ACCEPT = "application/geo+json, application/json;q=0.9"
POINT_BOX = 1e-5  # degrees, about a metre: the point is then checked locally with covers
# Query parameters of Part 1 that a property filter must not shadow.
RESERVED = {"f", "limit", "bbox", "datetime", "offset", "crs", "bbox-crs"}


def _bbox(extent: Any) -> tuple[float, float, float, float] | None:
    """The first box of ``extent.spatial``, when it is CRS84 (the default of Part 1)."""
    spatial = extent.get("spatial") if isinstance(extent, dict) else None
    if not isinstance(spatial, dict):
        return None
    crs = spatial.get("crs")
    if crs and not str(crs).endswith("CRS84"):
        return None
    boxes = spatial.get("bbox")
    box = boxes[0] if isinstance(boxes, list) and boxes and isinstance(boxes[0], list) else boxes
    if not isinstance(box, list) or not all(isinstance(v, (int, float)) for v in box):
        return None
    if len(box) == 4:
        return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    if len(box) == 6:  # with heights: west, south, low, east, north, high
        return (float(box[0]), float(box[1]), float(box[3]), float(box[4]))
    return None


def _is_json_error(response: Response) -> bool:
    """pygeoapi's JSON error with HTTP 500 (a provider failure) is an answer to quote, not to retry."""
    head = response.body[:2000]
    return head.lstrip().startswith(b"{") and b'"description"' in head


def _keep(feature: Feature, properties: tuple[str, ...] | None) -> Feature:
    if properties is None:
        return feature
    return Feature(feature.id, feature.geometry, {k: feature.properties.get(k) for k in properties})


class OGCAPIProvider:
    def __init__(
        self,
        http: HttpClient,
        service_url: str,
        *,
        page_size: int = 500,
        max_features: int = DEFAULT_MAX_FEATURES,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.http = http
        self.service_url = service_url.rstrip("/")
        self.page_size = page_size
        self.max_features = max_features

    async def _get(self, url: str, params: dict[str, str] | None = None) -> Response:
        return await self.http.get(url, params=params, headers={"Accept": ACCEPT}, accept=_is_json_error)

    def _json(self, response: Response, what: str) -> Any:
        head = response.body.lstrip()[:200].lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            raise UpstreamError(
                f"the OGC API server answered an HTML page to {what} (HTTP {response.status}); is "
                f"{self.service_url} the landing page of an OGC API - Features service?"
            )
        if response.status >= 400:
            raise UpstreamError(f"the OGC API server refused {what}: {self._error(response)}")
        if not head:
            raise UpstreamError(f"the OGC API server answered an empty body to {what} (HTTP {response.status})")
        try:
            return response.json()
        except UpstreamError:
            raise UpstreamError(
                f"the OGC API server answered something that is not JSON to {what} (HTTP {response.status}): "
                f"{answer_excerpt(response.body, 200)!r}"
            ) from None

    def _error(self, response: Response) -> str:
        """The server's words: pygeoapi's ``{"code", "description"}``, else the start of the body."""
        try:
            data = response.json()
        except UpstreamError:
            data = None
        if isinstance(data, dict) and (data.get("code") or data.get("description")):
            parts = [str(data[k]) for k in ("code", "description") if data.get(k)]
            return f"HTTP {response.status} " + ": ".join(parts)
        return f"HTTP {response.status} {answer_excerpt(response.body, 200)!r}"

    async def layers(self) -> list[LayerInfo]:
        data = self._json(await self._get(f"{self.service_url}/collections", {"f": "json"}), "/collections")
        collections = data.get("collections") if isinstance(data, dict) else None
        if not isinstance(collections, list):
            raise UpstreamError("the OGC API server's /collections has no list of collections")
        found = []
        for item in collections:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            found.append(
                LayerInfo(
                    name=str(item["id"]),
                    title=str(item.get("title") or ""),
                    description=str(item.get("description") or ""),
                    bbox=_bbox(item.get("extent")),
                )
            )
        return found

    async def features(self, query: LayerQuery) -> FeatureBatch:
        url = f"{self.service_url}/collections/{quote(query.layer, safe='')}/items"
        params: dict[str, str] = {"f": "json"}
        area = query.bbox
        if query.point is not None:
            lon, lat = query.point
            area = (lon - POINT_BOX, lat - POINT_BOX, lon + POINT_BOX, lat + POINT_BOX)
        if area is not None:
            params["bbox"] = ",".join(repr(float(v)) for v in area)
        for key, value in query.filters.items():
            if key not in RESERVED:  # else only checked locally
                params[key] = value

        kept: list[Feature] = []
        seen: set[str] = set()
        fetched = 0
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise UpstreamError(f"the OGC API server's 'next' link goes round in circles ({next_url})")
            seen.add(next_url)
            if next_url == url:
                size = self.page_size if query.limit is None else max(1, min(self.page_size, query.limit))
                response = await self._get(url, {**params, "limit": str(size)})
            else:
                # The link carries the query (and the server's own paging) already.
                response = await self._get(next_url)
            if response.status == 404 and next_url == url:
                await self._unknown_collection(query.layer, response)
            page = self._json(response, f"the items of '{query.layer}'")
            if not isinstance(page, dict) or page.get("type") != "FeatureCollection":
                raise UpstreamError(
                    f"the OGC API server answered JSON that is not a FeatureCollection for '{query.layer}'"
                )
            raw = page.get("features")
            if not isinstance(raw, list):
                raise UpstreamError(
                    f"the OGC API server answered a FeatureCollection without features for '{query.layer}'"
                )
            matched = page.get("numberMatched")
            if isinstance(matched, int) and query.limit is None and matched > self.max_features:
                raise self._too_many(query.layer, f"{matched} features match")
            for item in raw:
                fetched += 1
                try:
                    feature = feature_from_geojson(item, fallback_id=f"{query.layer}.{fetched}")
                except FeatureError as error:
                    raise UpstreamError(
                        f"the OGC API server sent feature {fetched} of '{query.layer}': {error}"
                    ) from None
                if matches(feature, query):
                    kept.append(_keep(feature, query.properties))
                    if query.limit is not None and len(kept) >= query.limit:
                        return FeatureBatch(kept)
            if query.limit is None and fetched > self.max_features:
                raise self._too_many(query.layer, f"more than {self.max_features} features match")
            next_url = self._next(page, response.url) if raw else None
        # Counted here, not the server's numberMatched: it is wrong when the server ignored a filter.
        return FeatureBatch(kept, number_matched=len(kept) if query.limit is None else None)

    def _next(self, page: dict[str, Any], current: str) -> str | None:
        links = page.get("links")
        if not isinstance(links, list):
            return None
        found = [link for link in links if isinstance(link, dict) and link.get("rel") == "next" and link.get("href")]

        # GeoServer gives one 'next' per format: the GeoJSON one, else any JSON, else an untyped one.
        def rank(link: dict[str, Any]) -> int:
            kind = str(link.get("type") or "").lower()
            return 0 if "geo+json" in kind else 1 if "json" in kind else 2 if not kind else 3

        if not found:
            return None
        return urljoin(current, str(min(found, key=rank)["href"]))

    async def _unknown_collection(self, layer: str, response: Response) -> None:
        try:
            known = [info.name for info in await self.layers()]
        except UpstreamError:
            known = None
        if known is not None and layer not in known:
            raise NotFound(f"no collection '{layer}' in the OGC API service; collections: {', '.join(known) or 'none'}")
        raise UpstreamError(f"the OGC API server refused the items of '{layer}': {self._error(response)}")

    def _too_many(self, layer: str, what: str) -> TooManyFeatures:
        return TooManyFeatures(
            f"{what} in the collection '{layer}', more than {self.max_features}: narrow the query (a filter, a box)"
        )
