"""GeoCodeJSON features (protocols.md §1.3) of index entries: labels, context, Lambert-93 x/y."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from pyproj import Transformer

from connectors.sig.addressindex.build import commune_info, department_code
from connectors.sig.coordinates import WGS84_L93_AREA

# BAN splits these three cities into arrondissements: `city` is the city, `district` the arrondissement.
_DISTRICT_CITIES = {"751": "Paris", "6938": "Lyon", "132": "Marseille"}
# x/y are in the legal projection: Lambert-93 in mainland France, local UTM overseas.
_OVERSEAS_CRS = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}


@cache
def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


def project(citycode: str, lon: float, lat: float) -> tuple[float, float] | None:
    epsg = _OVERSEAS_CRS.get(department_code(citycode), 2154)
    west, south, east, north = WGS84_L93_AREA
    # Points outside EPSG:2154's area of use are not projected rather than projected wrong.
    if epsg == 2154 and not (west <= lon <= east and south <= lat <= north):
        return None
    x, y = _transformer(epsg).transform(lon, lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return round(x, 2), round(y, 2)


@cache
def context(citycode: str) -> str:
    code = department_code(citycode)
    info = commune_info(citycode)
    if not info or not info.get("department_name"):
        return code
    return ", ".join(filter(None, (code, info["department_name"], info.get("region_name"))))


def city_and_district(citycode: str, name: str) -> tuple[str, str | None]:
    for prefix, city in _DISTRICT_CITIES.items():
        if citycode.startswith(prefix):
            return city, name
    return name, None


def feature(
    kind: str,
    *,
    id: str,
    name: str,
    lon: float,
    lat: float,
    postcode: str,
    citycode: str,
    commune: str,
    importance: float,
    score: float,
    housenumber: str | None = None,
    street: str | None = None,
    population: int = 0,
    distance: float | None = None,
) -> dict[str, Any]:
    city, district = city_and_district(citycode, commune)
    props: dict[str, Any] = {}
    if kind == "municipality":
        props["label"] = commune
        props["name"] = commune
        props["municipality"] = commune
    elif kind == "housenumber":
        props["label"] = f"{housenumber} {street} {postcode} {city}"
        props["housenumber"] = housenumber
        props["name"] = f"{housenumber} {street}"
        props["street"] = street
    else:
        props["label"] = f"{name} {postcode} {city}"
        props["name"] = name
        props[kind] = name
    props.update(
        score=round(min(max(score, 0.0), 1.0), 4),
        id=id,
        type=kind,
        importance=round(float(importance), 4),
        postcode=postcode,
        citycode=citycode,
        city=city,
    )
    if district:
        props["district"] = district
    props["context"] = context(citycode)
    xy = project(citycode, lon, lat)
    if xy is not None:
        props["x"], props["y"] = xy
    if population:
        props["population"] = population
    if distance is not None:
        props["distance"] = round(distance)
    # addok only sends non-empty properties (protocols.md §1.3).
    props = {key: value for key, value in props.items() if value not in ("", None)}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}
