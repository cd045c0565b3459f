"""The remote backend: a BAN-style geocoder (the Géoplateforme, a BAN API, addok) over HTTP (protocols.md §1).

Calls go through the instance's outbound client, which spaces them under the instance's
rate limit, retries them, honours ``Retry-After`` and keeps a breaker. Answers are checked
as GeoCodeJSON: a FeatureCollection whose features are Points with properties; anything
else is the geocoder's error (``UpstreamError``), its own validation refusals included.
"""

from __future__ import annotations

from typing import Any

from passerelle import UpstreamError
from passerelle.http import HttpClient, answer_excerpt

__all__ = ["RemoteGeocoder"]


def _error_detail(payload: Any) -> str:
    """The reason in a geocoder's error body: addok-server/Géoplateforme, raw addok (falcon), or nothing."""
    if isinstance(payload, dict):
        detail = payload.get("detail")
        if isinstance(detail, list) and detail:
            return "; ".join(str(item) for item in detail)
        for key in ("description", "message", "title"):
            if isinstance(payload.get(key), str) and payload[key]:
                return payload[key]
    return ""


def _features(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("features"), list):
        raise UpstreamError("the geocoder answered something that is not a GeoJSON FeatureCollection")
    found = []
    for feature in payload["features"]:
        try:
            geometry = feature["geometry"]
            lon, lat = geometry["coordinates"][:2]
            valid = geometry["type"] == "Point" and isinstance(feature.get("properties"), dict)
            valid = valid and all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat))
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise UpstreamError("the geocoder answered a feature that is not a point with properties")
        found.append(feature)
    return found


class RemoteGeocoder:
    def __init__(self, http: HttpClient, service_url: str) -> None:
        self.http = http
        self.service_url = service_url

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self.http.get(self.service_url + path, params=params)
        if response.status == 200:
            return _features(response.json())
        try:
            detail = _error_detail(response.json())
        except UpstreamError:
            detail = answer_excerpt(response.body)
        raise UpstreamError(
            f"the geocoder answered HTTP {response.status}" + (f": {detail}" if detail else ""),
            data={"status": response.status},
        )

    async def search(
        self,
        q: str,
        limit: int,
        *,
        autocomplete: bool = True,
        postcode: str | None = None,
        citycode: str | None = None,
        type: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> list[dict[str, Any]]:
        params = {"q": q, "limit": str(limit), "autocomplete": "1" if autocomplete else "0"}
        for name, value in (("postcode", postcode), ("citycode", citycode), ("type", type)):
            if value:
                params[name] = value
        if lat is not None and lon is not None:
            params["lat"], params["lon"] = repr(lat), repr(lon)
        return await self._get("search/", params)

    async def reverse(self, lon: float, lat: float, limit: int = 1, *, type: str | None = None) -> list[dict[str, Any]]:
        params = {"lon": repr(lon), "lat": repr(lat), "limit": str(limit)}
        if type:
            params["type"] = type
        return await self._get("reverse/", params)
