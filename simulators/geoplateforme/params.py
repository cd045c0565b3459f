"""Query-string validation with the Géoplateforme's rules and error strings (protocols.md §1.2, §1.5).

The strings for q, lon/lat together and type are the service's own. protocols.md gives no string for the other
rules; those below follow the same "<param>: <rule>" pattern and are the simulator's wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .search import Filters

TYPES = ("housenumber", "street", "locality", "municipality")
INDEXES = ("address", "poi", "parcel")
MAX_LIMIT = 20
_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_POSTCODE = re.compile(r"^\d{5}$")
_CITYCODE = re.compile(r"^(\d{5}|\d[AB]\d{3})$")


@dataclass(frozen=True, slots=True)
class Query:
    q: str
    limit: int
    autocomplete: bool
    center: tuple[float, float] | None
    filters: Filters
    indexes: tuple[str, ...]

    def filters_echo(self) -> dict[str, str]:
        given = {"type": self.filters.type, "postcode": self.filters.postcode, "citycode": self.filters.citycode}
        return {k: v for k, v in given.items() if v is not None}


def _float(params: Mapping[str, str], name: str, bound: float, errors: list[str]) -> float | None:
    if name not in params:
        return None
    try:
        value = float(params[name])
    except ValueError:
        value = float("nan")
    if not -bound <= value <= bound:
        errors.append(f"{name}: must be a float between -{bound:g} and {bound:g}")
        return None
    return value


def parse(params: Mapping[str, str], *, reverse: bool) -> tuple[Query | None, list[str]]:
    """The parsed query, or the list of every problem found."""
    errors: list[str] = []

    q = params.get("q", "")
    if not reverse:
        if "q" not in params:
            errors.append("q: required param")
        elif not (3 <= len(q) <= 200 and q[:1].isalnum()):
            errors.append("q: must contain between 3 and 200 chars and start with a number or a letter")

    limit = 1 if reverse else 10
    if "limit" in params:
        raw = params["limit"]
        if raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
            limit = int(raw)
        else:
            errors.append(f"limit: must be an integer between 1 and {MAX_LIMIT}")

    autocomplete = True
    if "autocomplete" in params:
        raw = params["autocomplete"].lower()
        if raw in _BOOLEANS:
            autocomplete = _BOOLEANS[raw]
        else:
            errors.append(f"Unexpected value '{params['autocomplete']}' for param autocomplete")

    lon = _float(params, "lon", 180, errors)
    lat = _float(params, "lat", 90, errors)
    if reverse:
        for name in ("lon", "lat"):
            if name not in params:
                errors.append(f"{name}: required param")
    elif ("lon" in params) != ("lat" in params):
        errors.append("lon/lat must be present together if defined")

    kind = params.get("type")
    if kind is not None and kind not in TYPES:
        errors.append(f"Unexpected value '{kind}' for param type")
    postcode = params.get("postcode")
    if postcode is not None and not _POSTCODE.match(postcode):
        errors.append("postcode: must contain 5 digits")
    citycode = params.get("citycode")
    if citycode is not None and not _CITYCODE.match(citycode):
        errors.append("citycode: must be a valid INSEE code (5 chars, 2A/2B for Corsica)")

    indexes = tuple(params.get("index", "address").split(","))
    for index in indexes:
        if index not in INDEXES:
            errors.append(f"Unexpected value '{index}' for param index")

    if errors:
        return None, errors
    center = (lon, lat) if lon is not None and lat is not None else None
    return Query(q, limit, autocomplete, center, Filters(kind, postcode, citycode), indexes), []
