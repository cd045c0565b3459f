"""Refreshing the administrative referentials from the API Découpage administratif, geo.api.gouv.fr.

Three GET calls (protocols.md §2) give every commune and municipal arrondissement, department and region, overseas
collectivities included, which :meth:`Referentials.from_geoapi` checks before anything replaces the data in use.
"""

from __future__ import annotations

from typing import Any

from connectors.sig.referentials import Referentials
from passerelle.envelope import UpstreamError, UpstreamUnavailable
from passerelle.http import HttpClient, answer_excerpt
from passerelle.threads import run_sync

__all__ = ["COMMUNES_PARAMS", "DEPARTEMENTS_PARAMS", "REGIONS_PARAMS", "fetch_referentials"]

ZONES = "metro,drom,com"
COMMUNES_PARAMS = {
    "type": "commune-actuelle,arrondissement-municipal",
    # Explicit fields: the default set lacks `type` and carries siren and EPCI codes the cities do not use.
    "fields": "nom,code,codesPostaux,codeDepartement,codeRegion,population,type",
    "zone": ZONES,
    "format": "json",
}
# Departments and regions of overseas collectivities are only listed when asked for; cities there name them.
DEPARTEMENTS_PARAMS = {"fields": "nom,code,codeRegion,zone", "zone": ZONES}
REGIONS_PARAMS = {"fields": "nom,code,zone", "zone": ZONES}


async def _get_list(http: HttpClient, base_url: str, path: str, params: dict[str, str]) -> list[Any]:
    url = f"{base_url.rstrip('/')}/{path}"
    try:
        response = await http.get(url, params=params)
    except UpstreamUnavailable:
        raise
    except UpstreamError as exc:
        # The client's own message ("answered HTTP 500"), said of which call.
        raise UpstreamError(f"geo.api /{path}: {exc.message}") from exc
    if response.status != 200:
        # geo.api.gouv.fr's errors are short text bodies ("Not Found"): they say what went wrong.
        excerpt = answer_excerpt(response.body)
        raise UpstreamError(f"geo.api /{path} answered HTTP {response.status}: {excerpt!r}")
    try:
        payload = response.json()
    except UpstreamError as exc:
        raise UpstreamError(f"geo.api /{path}: {exc.message}") from exc
    if not isinstance(payload, list):
        raise UpstreamError(f"geo.api /{path} answered a JSON {type(payload).__name__}, not a list")
    return payload


async def fetch_referentials(http: HttpClient, base_url: str) -> Referentials:
    """Communes, departments and regions from geo.api.gouv.fr at ``base_url`` (``https://geo.api.gouv.fr``).

    Raises :class:`~passerelle.envelope.UpstreamError` when a call fails (with the start of the text body of an
    HTTP error) or when the answers are malformed or too short to be complete lists: the data in use must then
    stay. Connection failures and timeouts stay :class:`~passerelle.envelope.UpstreamUnavailable`.
    """
    regions = await _get_list(http, base_url, "regions", REGIONS_PARAMS)
    departements = await _get_list(http, base_url, "departements", DEPARTEMENTS_PARAMS)
    communes = await _get_list(http, base_url, "communes", COMMUNES_PARAMS)
    try:
        # Checking and indexing 35,000 communes takes some 0.4 s of CPU: not on the event loop.
        return await run_sync(Referentials.from_geoapi, communes, departements, regions)
    except ValueError as exc:
        raise UpstreamError(f"geo.api answered unusable referentials: {exc}") from exc
