"""Address records for the geocoder simulator: loading, derived streets and communes, GeoCodeJSON properties."""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pyproj import Transformer

HEADER = ["id", "numero", "suffixe", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon", "lat"]

# BAN splits these three cities into arrondissements: `city` is the city, `district` the arrondissement.
_DISTRICT_CITIES = {"751": "Paris", "6938": "Lyon", "132": "Marseille"}

# Only the départements of the bundled data sets; others get a context made of their code alone.
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "05": ("Hautes-Alpes", "Provence-Alpes-Côte d'Azur"),
    "54": ("Meurthe-et-Moselle", "Grand Est"),
    "71": ("Saône-et-Loire", "Bourgogne-Franche-Comté"),
    "75": ("Paris", "Île-de-France"),
    "93": ("Seine-Saint-Denis", "Île-de-France"),
    "974": ("La Réunion", "La Réunion"),
}

# x/y are in the legal projection: Lambert-93 in mainland France, local UTM overseas.
_OVERSEAS_CRS = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}

# The BAN writes lieux-dits without a house number with these sentinel numbers.
_NO_NUMBER = {0, 99999}


@dataclass(frozen=True, slots=True)
class Address:
    """One row of the normalised CSV (shared/data/addresses/README.md)."""

    id: str
    numero: int
    suffixe: str
    nom_voie: str
    code_postal: str
    code_insee: str
    nom_commune: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Place:
    """A searchable result: a house number, a street, a locality or a municipality."""

    type: str
    lon: float
    lat: float
    properties: dict[str, str | float]


def load_csv(path: str | Path) -> list[Address]:
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";")
    missing = set(HEADER) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return [
        Address(
            id=row["id"],
            numero=int(row["numero"]),
            suffixe=row["suffixe"],
            nom_voie=row["nom_voie"],
            code_postal=row["code_postal"],
            code_insee=row["code_insee"],
            nom_commune=row["nom_commune"],
            lon=float(row["lon"]),
            lat=float(row["lat"]),
        )
        for row in reader
    ]


def department_code(citycode: str) -> str:
    return citycode[:3] if citycode.startswith("97") else citycode[:2]


def context(citycode: str) -> str:
    code = department_code(citycode)
    if code not in DEPARTMENTS:
        return code
    name, region = DEPARTMENTS[code]
    return f"{code}, {name}, {region}"


@lru_cache(maxsize=8)
def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


def legal_crs(citycode: str) -> int:
    return _OVERSEAS_CRS.get(department_code(citycode), 2154)


def project(citycode: str, lon: float, lat: float) -> tuple[float, float] | None:
    x, y = _transformer(legal_crs(citycode)).transform(lon, lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return round(x, 2), round(y, 2)


def city_and_district(citycode: str, nom_commune: str) -> tuple[str, str | None]:
    for prefix, city in _DISTRICT_CITIES.items():
        if citycode.startswith(prefix):
            return city, nom_commune
    return nom_commune, None


def housenumber_text(address: Address) -> str:
    return f"{address.numero} {address.suffixe}" if address.suffixe else str(address.numero)


def _common(citycode: str, nom_commune: str, postcode: str, lon: float, lat: float) -> dict[str, str | float]:
    city, district = city_and_district(citycode, nom_commune)
    props: dict[str, str | float] = {"postcode": postcode, "citycode": citycode, "city": city}
    if district:
        props["district"] = district
    xy = project(citycode, lon, lat)
    if xy is not None:
        props["x"], props["y"] = xy
    props["context"] = context(citycode)
    return props


def build_places(addresses: Sequence[Address]) -> list[Place]:
    """Every address, plus one street per (commune, street name) and one municipality per commune."""
    per_commune: dict[str, list[Address]] = defaultdict(list)
    per_street: dict[tuple[str, str], list[Address]] = defaultdict(list)
    for address in addresses:
        per_commune[address.code_insee].append(address)
        per_street[(address.code_insee, address.nom_voie)].append(address)
    largest = max((len(rows) for rows in per_commune.values()), default=1)
    # A stand-in for BAN's importance (derived from population): communes with more addresses weigh more.
    importance = {
        code: round(0.3 + 0.4 * math.log1p(len(rows)) / math.log1p(largest), 4) for code, rows in per_commune.items()
    }

    places: list[Place] = []
    for a in addresses:
        props = _common(a.code_insee, a.nom_commune, a.code_postal, a.lon, a.lat)
        city = props["city"]
        if a.numero in _NO_NUMBER:
            props.update(label=f"{a.nom_voie} {a.code_postal} {city}", id=a.id, name=a.nom_voie, locality=a.nom_voie)
            kind = "locality"
        else:
            number = housenumber_text(a)
            props.update(
                label=f"{number} {a.nom_voie} {a.code_postal} {city}",
                housenumber=number,
                id=a.id,
                name=f"{number} {a.nom_voie}",
                street=a.nom_voie,
            )
            kind = "housenumber"
        props.update(type=kind, importance=importance[a.code_insee])
        places.append(Place(kind, a.lon, a.lat, props))

    for (citycode, street), rows in per_street.items():
        numbered = sorted((r for r in rows if r.numero not in _NO_NUMBER), key=lambda r: (r.numero, r.suffixe))
        if not numbered:
            continue
        # The middle house number stands on the street, where a centroid of a bent street may not.
        middle = numbered[len(numbered) // 2]
        props = _common(citycode, middle.nom_commune, middle.code_postal, middle.lon, middle.lat)
        props.update(
            label=f"{street} {middle.code_postal} {props['city']}",
            id=_street_id(middle.id),
            name=street,
            street=street,
            type="street",
            importance=importance[citycode],
        )
        places.append(Place("street", middle.lon, middle.lat, props))

    for citycode, rows in per_commune.items():
        lon = round(sum(r.lon for r in rows) / len(rows), 6)
        lat = round(sum(r.lat for r in rows) / len(rows), 6)
        first = rows[0]
        props = _common(citycode, first.nom_commune, first.code_postal, lon, lat)
        props.update(
            label=f"{first.nom_commune}",
            id=citycode,
            name=first.nom_commune,
            municipality=first.nom_commune,
            type="municipality",
            importance=importance[citycode],
        )
        places.append(Place("municipality", lon, lat, props))
    return places


def _street_id(address_id: str) -> str:
    # BAN ids are <citycode>_<street>_<number>[_suffix]: the street id is the first two parts.
    return "_".join(address_id.split("_")[:2])
