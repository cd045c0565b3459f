"""Offline administrative referentials: cities, departments and regions, as Passerelle serves them.

By default the data is the INSEE list bundled in ``data/`` (see ``data/README.md``), loaded once on first use.
Every query function is pure and synchronous, and answers the items of Passerelle's
``base-adresse`` ``cities``, ``departments`` and ``regions`` data sources (one city item per
commune and postcode, ``id`` ``"<insee>.<postcode>"``), without the ``{"data": …}`` wrapper,
which the endpoint adds.

Cities keep current communes and the 45 municipal arrondissements of Paris, Lyon and Marseille (so a
citizen can pick "Lyon 3e Arrondissement"); departments and regions are the 101 and 18 of
metropolitan France and the overseas departments, as geo.api.gouv.fr lists them by default, while
cities of overseas collectivities still carry their collectivity's code and name.

The data is a value, :class:`Referentials`: :func:`bundled` gives the INSEE bundle, and
:meth:`Referentials.from_geoapi` builds one from geo.api.gouv.fr's answers (protocols.md §2; fetched by
``connectors.sig.geoapi``), refusing a payload too small or malformed to replace good data.
:meth:`Referentials.to_payload` and :meth:`Referentials.from_payload` keep one as JSON across restarts.
Every query function takes an optional ``refs`` (the bundle when None).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any

from passerelle.text import fold

__all__ = ["PAYLOAD_VERSION", "Referentials", "bundled", "cities", "departments", "regions"]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CITIES_LIMIT = 30
# The zones geo.api.gouv.fr lists departments and regions for unless asked otherwise.
LISTED_ZONES = frozenset({"metro", "drom"})
ORDERING_FIELDS = frozenset({"name", "code", "zipcode", "population"})
# The kinds of commune the cities list: geo.api.gouv.fr's current communes and municipal arrondissements.
COMMUNE_TYPES = frozenset({"commune-actuelle", "arrondissement-municipal"})
ZONES = frozenset({"metro", "drom", "com"})
# Below these counts a geo.api.gouv.fr answer is partial (France has about 35,000 communes, 101 departments and
# 18 regions, more with the overseas collectivities): better keep the data we have than replace it.
MIN_COMMUNES, MIN_DEPARTEMENTS, MIN_REGIONS = 30_000, 100, 18
PAYLOAD_VERSION = 1
_INSEE_CODE = re.compile(r"[0-9][0-9AB][0-9]{3}")
_AREA_CODE = re.compile(r"[0-9][0-9AB][0-9]?")
_POSTCODE = re.compile(r"[0-9]{5}")

# Commune names always spell "Saint" out; citizens often do not.
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}

# Match quality, best first.
EXACT, PREFIX, WORDS = 0, 1, 2


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
    searchable: _Searchable = dataclasses.field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class _Commune:
    code: str
    name: str
    type: str
    zipcodes: tuple[str, ...]
    population: int
    department_code: str
    region_code: str | None


@dataclass(frozen=True, slots=True)
class _City:
    code: str
    name: str
    zipcode: str
    population: int
    department_code: str
    region_code: str | None
    searchable: _Searchable


def _area(code: str, name: str, zone: str, region_code: str | None) -> _Area:
    return _Area(code, name, zone, region_code, _searchable(name))


@dataclass(frozen=True, slots=True, eq=False)
class Referentials:
    """Communes, departments and regions: the data every query function answers from.

    Build one with :func:`bundled`, :meth:`from_geoapi` or :meth:`from_payload`; two are equal when their
    communes, departments and regions are (the indexes derived from them are not compared).
    """

    communes: tuple[_Commune, ...]
    departments: dict[str, _Area]
    regions: dict[str, _Area]
    cities: tuple[_City, ...] = dataclasses.field(init=False, repr=False)
    cities_by_id: dict[str, _City] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        cities = []
        for commune in self.communes:
            searchable = _searchable(commune.name)
            for zipcode in commune.zipcodes:
                cities.append(
                    _City(
                        commune.code,
                        commune.name,
                        zipcode,
                        commune.population,
                        commune.department_code,
                        commune.region_code,
                        searchable,
                    )
                )
        # Frozen for the callers; the indexes are derived once, here.
        object.__setattr__(self, "cities", tuple(cities))
        object.__setattr__(self, "cities_by_id", {f"{city.code}.{city.zipcode}": city for city in cities})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Referentials):
            return NotImplemented
        return (self.communes, self.departments, self.regions) == (other.communes, other.departments, other.regions)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Referentials({len(self.communes)} communes, {len(self.departments)} departments, "
            f"{len(self.regions)} regions)"
        )

    @classmethod
    def from_geoapi(
        cls,
        communes: list[dict[str, Any]],
        departements: list[dict[str, Any]],
        regions: list[dict[str, Any]],
        *,
        min_communes: int = MIN_COMMUNES,
        min_departements: int = MIN_DEPARTEMENTS,
        min_regions: int = MIN_REGIONS,
    ) -> Referentials:
        """Referentials from geo.api.gouv.fr's JSON answers (protocols.md §2).

        ``communes`` rows hold ``nom, code, codesPostaux, codeDepartement, codeRegion, population, type``
        (``/communes?type=commune-actuelle,arrondissement-municipal&fields=…``), ``departements`` rows
        ``nom, code, codeRegion, zone`` and ``regions`` rows ``nom, code, zone``; all three asked with
        ``zone=metro,drom,com``. A region without ``zone`` (some api-geo releases have none) takes its
        departments'. Absent ``codesPostaux`` or ``population`` (geo.api.gouv.fr leaves them out
        where INSEE has none) mean none and 0; an absent commune ``codeRegion`` is its department's region.
        Raises ValueError naming the first bad row and field, or when a list is shorter than its minimum: a
        partial answer must never replace complete data.
        """
        _check_size("regions", regions, min_regions)
        _check_size("departements", departements, min_departements)
        _check_size("communes", communes, min_communes)
        region_areas = _parse_areas("regions", regions, has_region=False, regions=None)
        department_areas = _parse_areas("departements", departements, has_region=True, regions=region_areas)
        region_areas = _with_zones(region_areas, department_areas)
        parsed = tuple(_parse_commune(index, row, department_areas) for index, row in enumerate(communes))
        _check_unique("communes", [commune.code for commune in parsed])
        return cls(parsed, department_areas, region_areas)

    def to_payload(self) -> dict[str, Any]:
        """A JSON-serialisable form, in geo.api.gouv.fr's field names, that :meth:`from_payload` reads back."""
        return {
            "version": PAYLOAD_VERSION,
            "communes": [
                {
                    "nom": commune.name,
                    "code": commune.code,
                    "type": commune.type,
                    "codesPostaux": list(commune.zipcodes),
                    "codeDepartement": commune.department_code,
                    "codeRegion": commune.region_code,
                    "population": commune.population,
                }
                for commune in self.communes
            ],
            "departements": [
                {"nom": area.name, "code": area.code, "codeRegion": area.region_code, "zone": area.zone}
                for area in self.departments.values()
            ],
            "regions": [{"nom": area.name, "code": area.code, "zone": area.zone} for area in self.regions.values()],
        }

    @classmethod
    def from_payload(
        cls,
        payload: dict[str, Any],
        *,
        min_communes: int = MIN_COMMUNES,
        min_departements: int = MIN_DEPARTEMENTS,
        min_regions: int = MIN_REGIONS,
    ) -> Referentials:
        """Read back :meth:`to_payload`'s output, validated as :meth:`from_geoapi` does (ValueError)."""
        if not isinstance(payload, dict) or payload.get("version") != PAYLOAD_VERSION:
            version = payload.get("version") if isinstance(payload, dict) else None
            raise ValueError(f"not a referentials payload of version {PAYLOAD_VERSION} (version {version!r})")
        lists = []
        for name in ("communes", "departements", "regions"):
            value = payload.get(name)
            if not isinstance(value, list):
                raise ValueError(f"payload: {name!r} must be a list")
            lists.append(value)
        return cls.from_geoapi(
            *lists, min_communes=min_communes, min_departements=min_departements, min_regions=min_regions
        )


def _check_size(name: str, rows: object, minimum: int) -> None:
    if not isinstance(rows, list):
        raise ValueError(f"{name}: expected a list, got {type(rows).__name__}")
    if len(rows) < minimum:
        raise ValueError(f"{name}: only {len(rows)} rows, fewer than the {minimum} expected of a complete list")


def _check_unique(name: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for index, code in enumerate(codes):
        if code in seen:
            raise ValueError(f"{name}[{index}] (code {code!r}): field 'code' repeats an earlier row")
        seen.add(code)


def _bad(name: str, index: int, row: dict[str, Any], field_name: str, expected: str) -> ValueError:
    code = row.get("code")
    where = f"{name}[{index}]" + (f" (code {code!r})" if isinstance(code, str) else "")
    return ValueError(f"{where}: field {field_name!r} must be {expected}, got {row.get(field_name)!r}")


def _text(name: str, index: int, row: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.fullmatch(value)):
        expected = f"a string matching {pattern.pattern}" if pattern is not None else "a non-empty string"
        raise _bad(name, index, row, key, expected)
    return value


def _parse_areas(name: str, rows: list[Any], *, has_region: bool, regions: dict[str, _Area] | None) -> dict[str, _Area]:
    areas: dict[str, _Area] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{name}[{index}]: expected an object, got {type(row).__name__}")
        code = _text(name, index, row, "code", _AREA_CODE)
        nom = _text(name, index, row, "nom")
        zone = row.get("zone")
        # Some api-geo releases list regions without their zone: it then comes from their departments.
        if zone not in ZONES and not (zone is None and "zone" not in row and not has_region):
            raise _bad(name, index, row, "zone", f"one of {sorted(ZONES)}")
        region_code: str | None = None
        if has_region:
            region_code = row.get("codeRegion")
            # Overseas collectivities may come without a region: the department then has none.
            if region_code is not None and (regions is None or region_code not in regions):
                raise _bad(name, index, row, "codeRegion", "the code of a listed region")
        if code in areas:
            raise _bad(name, index, row, "code", "unique")
        areas[code] = _area(code, nom, zone or "", region_code)
    return areas


# The zone a region takes from its departments, when it comes without one: the most central of theirs.
_ZONE_ORDER = ("metro", "drom", "com")


def _with_zones(regions: dict[str, _Area], departments: dict[str, _Area]) -> dict[str, _Area]:
    if all(area.zone for area in regions.values()):
        return regions
    zones: dict[str, set[str]] = {}
    for department in departments.values():
        if department.region_code is not None:
            zones.setdefault(department.region_code, set()).add(department.zone)
    completed = {}
    for index, (code, area) in enumerate(regions.items()):
        if not area.zone:
            found = [zone for zone in _ZONE_ORDER if zone in zones.get(code, ())]
            if not found:
                raise ValueError(
                    f"regions[{index}] (code {code!r}): field 'zone' is missing and no department gives it"
                )
            area = dataclasses.replace(area, zone=found[0])
        completed[code] = area
    return completed


def _parse_commune(index: int, row: Any, departments: dict[str, _Area]) -> _Commune:
    name = "communes"
    if not isinstance(row, dict):
        raise ValueError(f"{name}[{index}]: expected an object, got {type(row).__name__}")
    code = _text(name, index, row, "code", _INSEE_CODE)
    nom = _text(name, index, row, "nom")
    kind = row.get("type", "commune-actuelle")
    if kind not in COMMUNE_TYPES:
        raise _bad(name, index, row, "type", f"one of {sorted(COMMUNE_TYPES)}")
    zipcodes = row.get("codesPostaux", [])
    if not isinstance(zipcodes, list) or not all(isinstance(z, str) and _POSTCODE.fullmatch(z) for z in zipcodes):
        raise _bad(name, index, row, "codesPostaux", "a list of 5-digit postcodes")
    population = row.get("population", 0)
    if not isinstance(population, int) or isinstance(population, bool) or population < 0:
        raise _bad(name, index, row, "population", "a non-negative integer")
    department_code = row.get("codeDepartement")
    department = departments.get(department_code) if isinstance(department_code, str) else None
    if department is None:
        raise _bad(name, index, row, "codeDepartement", "the code of a listed department")
    # A commune's region is its department's; none when the department (an overseas collectivity) has none.
    region_code = row.get("codeRegion", department.region_code)
    if region_code != department.region_code:
        raise _bad(name, index, row, "codeRegion", f"its department's region {department.region_code!r}")
    return _Commune(code, nom, kind, tuple(zipcodes), population, department_code, region_code)


def _load_areas(name: str) -> dict[str, _Area]:
    rows = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return {row["code"]: _area(row["code"], row["nom"], row["zone"], row.get("region")) for row in rows}


@cache
def bundled() -> Referentials:
    """The INSEE referentials bundled in ``data/`` (see ``data/README.md``), loaded once."""
    communes = json.loads(gzip.decompress((DATA_DIR / "communes.json.gz").read_bytes()))
    return Referentials(
        communes=tuple(
            _Commune(
                row["code"],
                row["nom"],
                row["type"],
                tuple(row["codesPostaux"]),
                row["population"],
                row["departement"],
                row["region"],
            )
            for row in communes
        ),
        departments=_load_areas("departements.json"),
        regions=_load_areas("regions.json"),
    )


def _area_name(areas: dict[str, _Area], code: str | None) -> str | None:
    area = areas.get(code) if code else None
    return area.name if area else None


def _city_item(city: _City, refs: Referentials) -> dict[str, Any]:
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
    *,
    refs: Referentials | None = None,
) -> list[dict[str, Any]]:
    """Cities, one item per commune and postcode.

    Digits in ``q`` match postcodes by prefix; its other words match folded names, whole or by
    words, ranked exact name first, then names starting with ``q``, then names containing its
    words, and by population within each rank. ``ordering`` ("-population,name"; fields name,
    code, zipcode, population) overrides that ranking. ``zipcode`` (exact) goes beyond Passerelle.
    Raises ValueError on an unknown ordering field. ``refs`` defaults to the bundled referentials.
    """
    refs = refs if refs is not None else bundled()
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
    *,
    refs: Referentials | None = None,
) -> list[dict[str, Any]]:
    """Departments; ``q`` matches the code ("2A") or the folded name, ``id`` is the code."""
    refs = refs if refs is not None else bundled()
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
    *,
    refs: Referentials | None = None,
) -> list[dict[str, Any]]:
    """Regions; ``q`` matches the code or the folded name, ``id`` is the code."""
    refs = refs if refs is not None else bundled()
    return [
        {"id": area.code, "code": area.code, "text": f"{area.code} - {area.name}", "name": area.name}
        for area in _areas(refs.regions, q, id)
    ]
