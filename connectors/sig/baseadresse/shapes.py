"""What ``base-adresse`` answers, made from GeoCodeJSON features (protocols.md §1.3), whichever backend found them.

- Nominatim's JSON dialect for ``search`` and ``reverse`` (what w.c.s. reads, passerelle.md §5.4):
  ``lat``/``lon`` as strings, ``display_name``, ``address{house_number, road, postcode, city, citycode,
  country}``.
- Data-source items: a Nominatim result carries ``id`` and ``text``, so ``addresses`` answers it as is;
  ``streets`` answers :func:`street_item`.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["feature_id", "nominatim", "street_item"]

# BAN properties worth passing on next to Nominatim's keys (Passerelle passes the BAN extras on).
EXTRAS = ("type", "score", "importance", "context", "district", "x", "y", "distance")


def feature_id(feature: dict[str, Any]) -> str:
    """The BAN id of the feature, or, for a geocoder that sends none, a stable digest of what it is."""
    props = feature.get("properties") or {}
    ban_id = props.get("id")
    if isinstance(ban_id, str) and ban_id:
        return ban_id
    lon, lat = feature["geometry"]["coordinates"][:2]
    digest = hashlib.sha256(f"{props.get('label', '')}|{lon:.6f}|{lat:.6f}".encode()).hexdigest()
    return f"h-{digest[:24]}"


def _road(props: dict[str, Any]) -> str | None:
    if props.get("street"):
        return props["street"]
    if props.get("type") == "municipality":
        return None
    name = props.get("name") or ""
    number = props.get("housenumber")
    if number and name.startswith(number):
        name = name[len(number) :].strip()
    return name or None


def nominatim(feature: dict[str, Any]) -> dict[str, Any]:
    """One result in Nominatim's dialect, with the BAN's extras."""
    props = feature.get("properties") or {}
    lon, lat = feature["geometry"]["coordinates"][:2]
    address: dict[str, Any] = {}
    if props.get("housenumber"):
        address["house_number"] = props["housenumber"]
    road = _road(props)
    if road:
        address["road"] = road
    for key in ("postcode", "city", "citycode"):
        if props.get(key):
            address[key] = props[key]
    address["country"] = "France"
    result: dict[str, Any] = {
        "lat": str(lat),
        "lon": str(lon),
        "display_name": props.get("label", ""),
        "address": address,
        "id": feature_id(feature),
        "text": props.get("label", ""),
        "ban_id": props.get("id", ""),
    }
    result.update({key: props[key] for key in EXTRAS if key in props})
    return result


def street_item(feature: dict[str, Any]) -> dict[str, Any]:
    """An item of the ``streets`` data source, in Passerelle's shape."""
    props = feature.get("properties") or {}
    name = props.get("name") or props.get("street") or ""
    lon, lat = feature["geometry"]["coordinates"][:2]
    return {
        "id": feature_id(feature),
        "text": name,
        "type": props.get("type", "street"),
        "city": props.get("city", ""),
        "citycode": props.get("citycode", ""),
        "zipcode": props.get("postcode", ""),
        "ban_id": props.get("id", ""),
        "lat": str(lat),
        "lon": str(lon),
    }
