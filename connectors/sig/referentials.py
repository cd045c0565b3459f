"""Offline administrative referentials: cities, departments and regions, as Passerelle serves them.

The data is the INSEE list bundled in ``data/`` (see ``data/README.md``), loaded once on first use.
Every query function is pure and synchronous, and answers the items of Passerelle's
``base-adresse`` ``cities``, ``departments`` and ``regions`` data sources (one city item per
commune and postcode, ``id`` ``"<insee>.<postcode>"``), without the ``{"data": …}`` wrapper,
which the endpoint adds.

Cities keep current communes and the 45 municipal arrondissements of Paris, Lyon and Marseille (so a
citizen can pick "Lyon 3e Arrondissement"); departments and regions are the 101 and 18 of
metropolitan France and the overseas departments, as geo.api.gouv.fr lists them by default, while
cities of overseas collectivities still carry their collectivity's code and name.

Refreshing from geo.api.gouv.fr (protocols.md §2) is left for later: the bundle is enough offline.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any

__all__ = ["cities", "departments", "fold", "regions"]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CITIES_LIMIT = 30
# The zones geo.api.gouv.fr lists departments and regions for unless asked otherwise.
LISTED_ZONES = frozenset({"metro", "drom"})
ORDERING_FIELDS = frozenset({"name", "code", "zipcode", "population"})

# Ligatures NFKD leaves alone but a French reader types as two letters ("coeur" for "cœur").
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
_NON_WORD = re.compile(r"[\W_]+")
# Commune names always spell "Saint" out; citizens often do not.
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}

# Match quality, best first.
EXACT, PREFIX, WORDS = 0, 1, 2


def fold(value: str) -> str:
    """The comparison form of a text: no accents, no case, punctuation and hyphens as single spaces."""
    decomposed = unicodedata.normalize("NFKD", value.casefold().translate(_LIGATURES))
    # Accents must go before the punctuation pass: combining marks are not word characters.
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NON_WORD.sub(" ", bare).strip()


def _expand(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(_ABBREVIATIONS.get(word, word) for word in words)


@dataclass(frozen=True, slots=True)
class _Searchable:
    folded: str
    words: tuple[str, ...]


def _searchable(name: str) -> _Searchable:
    words = _expand(fold(name).split())
    return _Searchable(" ".join(words), words)


class _Query:
    """A folded name query, with the variants its last word may stand for while the citizen types.

    "st" may be "saint" abbreviated or the start of "Strasbourg": both are tried.
    """

    def __init__(self, text: str) -> None:
        words = fold(text).split()
        head = _expand(words[:-1])
        last = words[-1] if words else ""
        self.variants = [(head, last)]
        if last in _ABBREVIATIONS:
            self.variants.append((head, _ABBREVIATIONS[last]))
        self.empty = not words

    def match(self, target: _Searchable) -> int | None:
        """The match quality of a name, or None when it does not match."""
        best: int | None = None
        for head, last in self.variants:
            joined = " ".join((*head, last))
            if target.folded == joined:
                return EXACT
            if target.folded.startswith(joined):
                best = PREFIX
            elif best is None and self._words_match(head, last, target.words):
                best = WORDS
        return best

    @staticmethod
    def _words_match(head: tuple[str, ...], last: str, words: tuple[str, ...]) -> bool:
        # Whole words anywhere in the name, the last one possibly unfinished: "etienne st" or "pierre oleron".
        return all(word in words for word in head) and any(word.startswith(last) for word in words)


@dataclass(frozen=True, slots=True)
class _Area:
    code: str
    name: str
    zone: str
    region_code: str | None
    searchable: _Searchable


@dataclass(frozen=True, slots=True)
class _City:
    code: str
    name: str
    zipcode: str
    population: int
    department_code: str
    region_code: str
    searchable: _Searchable


@dataclass(frozen=True, slots=True)
class _Referentials:
    cities: tuple[_City, ...]
    cities_by_id: dict[str, _City]
    departments: dict[str, _Area]
    regions: dict[str, _Area]


def _load_areas(name: str) -> dict[str, _Area]:
    rows = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return {
        row["code"]: _Area(row["code"], row["nom"], row["zone"], row.get("region"), _searchable(row["nom"]))
        for row in rows
    }


@cache
def _referentials() -> _Referentials:
    communes = json.loads(gzip.decompress((DATA_DIR / "communes.json.gz").read_bytes()))
    cities = []
    for commune in communes:
        searchable = _searchable(commune["nom"])
        for zipcode in commune["codesPostaux"]:
            cities.append(
                _City(
                    commune["code"],
                    commune["nom"],
                    zipcode,
                    commune["population"],
                    commune["departement"],
                    commune["region"],
                    searchable,
                )
            )
    return _Referentials(
        cities=tuple(cities),
        cities_by_id={f"{city.code}.{city.zipcode}": city for city in cities},
        departments=_load_areas("departements.json"),
        regions=_load_areas("regions.json"),
    )


def _area_name(areas: dict[str, _Area], code: str | None) -> str | None:
    area = areas.get(code) if code else None
    return area.name if area else None


def _city_item(city: _City, refs: _Referentials) -> dict[str, Any]:
    return {
        "id": f"{city.code}.{city.zipcode}",
        "text": f"{city.name} {city.zipcode}",
        "code": city.code,
        "name": city.name,
        "zipcode": city.zipcode,
        "population": city.population,
        "department_code": city.department_code,
        "department_name": _area_name(refs.departments, city.department_code),
        "region_code": city.region_code,
        "region_name": _area_name(refs.regions, city.region_code),
    }


_Items = list[dict[str, Any]]


def _ordering(ordering: str) -> Callable[[_Items], _Items]:
    fields = [field.strip() for field in ordering.split(",") if field.strip()]
    for field in fields:
        if field.lstrip("-") not in ORDERING_FIELDS:
            raise ValueError(f"unknown ordering field {field!r}, expected one of {sorted(ORDERING_FIELDS)}")

    def sort(items: _Items) -> _Items:
        # Stable sorts from the last field to the first give a multi-field order with mixed directions.
        for field in reversed(fields):
            key = field.lstrip("-")
            # Names sort as read, "Éourres" among the E's rather than after "Z".
            sort_key = (lambda item: fold(item["name"])) if key == "name" else itemgetter(key)
            items.sort(key=sort_key, reverse=field.startswith("-"))
        return items

    return sort


def cities(
    q: str | None = None,
    id: str | None = None,
    code: str | None = None,
    zipcode: str | None = None,
    department_code: str | None = None,
    region_code: str | None = None,
    page_limit: int = DEFAULT_CITIES_LIMIT,
    ordering: str | None = None,
) -> list[dict[str, Any]]:
    """Cities, one item per commune and postcode.

    Digits in ``q`` match postcodes by prefix; its other words match folded names, whole or by
    words, ranked exact name first, then names starting with ``q``, then names containing its
    words, and by population within each rank. ``ordering`` ("-population,name"; fields name,
    code, zipcode, population) overrides that ranking. ``zipcode`` (exact) goes beyond Passerelle.
    Raises ValueError on an unknown ordering field.
    """
    refs = _referentials()
    sort = _ordering(ordering) if ordering else None
    if id is not None:
        city = refs.cities_by_id.get(id.strip())
        return [_city_item(city, refs)] if city else []

    # Digits are a postcode being typed, even next to a name: "gap 05" finds "Gap 05000". A lone digit
    # after a name is rather an arrondissement: "lyon 3" means "Lyon 3e Arrondissement".
    words = fold(q).split() if q else []
    only_digits = all(word.isdigit() for word in words)
    postal = [word for word in words if word.isdigit() and (only_digits or len(word) > 1)]
    postcode = "".join(postal)
    name = " ".join(word for word in words if word not in postal)
    name_query = _Query(name) if name else None
    ranked: list[tuple[int, _City]] = []
    for city in refs.cities:
        if code is not None and city.code != code:
            continue
        if zipcode is not None and city.zipcode != zipcode:
            continue
        if department_code is not None and city.department_code != department_code:
            continue
        if region_code is not None and city.region_code != region_code:
            continue
        if postcode and not city.zipcode.startswith(postcode):
            continue
        rank = EXACT if city.zipcode == postcode else PREFIX
        if name_query is not None:
            match = name_query.match(city.searchable)
            if match is None:
                continue
            rank = match
        elif not postcode:
            rank = EXACT
        ranked.append((rank, city))

    ranked.sort(key=lambda pair: (pair[0], -pair[1].population, pair[1].searchable.folded, pair[1].zipcode))
    limit = max(page_limit, 0)
    if sort is None:
        return [_city_item(city, refs) for _, city in ranked[:limit]]
    return sort([_city_item(city, refs) for _, city in ranked])[:limit]


def _area_matches(area: _Area, query: str) -> int | None:
    folded = fold(query)
    if not folded:
        return EXACT
    code = area.code.casefold()
    if code == folded:
        return EXACT
    if code.startswith(folded):
        return PREFIX
    return _Query(query).match(area.searchable)


def _areas(areas: dict[str, _Area], q: str | None, id: str | None) -> list[_Area]:
    listed = [area for area in areas.values() if area.zone in LISTED_ZONES]
    if id is not None:
        return [area for area in listed if area.code == id.strip()]
    ranked = []
    for area in listed:
        rank = _area_matches(area, q) if q else EXACT
        if rank is not None:
            ranked.append((rank, area))
    # Code order reads naturally for a select list ("01 - Ain" … "976 - Mayotte").
    ranked.sort(key=lambda pair: (pair[0], pair[1].code))
    return [area for _, area in ranked]


def departments(
    q: str | None = None,
    id: str | None = None,
    region_code: str | None = None,
) -> list[dict[str, Any]]:
    """Departments; ``q`` matches the code ("2A") or the folded name, ``id`` is the code."""
    refs = _referentials()
    return [
        {
            "id": area.code,
            "code": area.code,
            "text": f"{area.code} - {area.name}",
            "name": area.name,
            "region_code": area.region_code,
            "region_name": _area_name(refs.regions, area.region_code),
        }
        for area in _areas(refs.departments, q, id)
        if region_code is None or area.region_code == region_code
    ]


def regions(
    q: str | None = None,
    id: str | None = None,
) -> list[dict[str, Any]]:
    """Regions; ``q`` matches the code or the folded name, ``id`` is the code."""
    refs = _referentials()
    return [
        {"id": area.code, "code": area.code, "text": f"{area.code} - {area.name}", "name": area.name}
        for area in _areas(refs.regions, q, id)
    ]
