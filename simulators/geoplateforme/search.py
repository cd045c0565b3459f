"""A small deterministic matcher for the simulator: token overlap, not addok's ranking.

Limits, on purpose: no typo tolerance, no abbreviations or synonyms (besides b/bis, t/ter, q/quater house-number
suffixes), no phonetics, no importance in the score. A result needs at least half the query's tokens.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .data import Place

_TOKEN = re.compile(r"[a-z]+|\d+")
_SUFFIXES = {"b": "bis", "t": "ter", "q": "quater"}
_SUFFIXES |= {v: k for k, v in _SUFFIXES.items()}


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    # Splitting digits from letters lets "12bis" match "12 bis".
    return _TOKEN.findall(fold(text))


@dataclass(frozen=True, slots=True)
class Filters:
    type: str | None = None
    postcode: str | None = None
    citycode: str | None = None

    def accept(self, place: Place) -> bool:
        props = place.properties
        return (
            (self.type is None or place.type == self.type)
            and (self.postcode is None or props.get("postcode") == self.postcode)
            and (self.citycode is None or props.get("citycode") == self.citycode)
        )


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    # Haversine on a spherical Earth: plenty for ranking and for BAN's integer metres.
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


class Index:
    def __init__(self, places: Sequence[Place]) -> None:
        self.places = list(places)
        self._docs: list[frozenset[str]] = []
        self._postings: dict[str, set[int]] = defaultdict(set)
        for i, place in enumerate(self.places):
            words = set(tokens(str(place.properties["label"])))
            suffix_words = tokens(str(place.properties.get("housenumber", "")))[1:]
            words |= {_SUFFIXES[w] for w in suffix_words if w in _SUFFIXES}
            self._docs.append(frozenset(words))
            for word in words:
                self._postings[word].add(i)
        self._vocabulary = sorted(self._postings)
        self._grid: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, place in enumerate(self.places):
            self._grid[_cell(place.lon, place.lat)].append(i)
        xs, ys = [x for x, _ in self._grid], [y for _, y in self._grid]
        self._bounds = [(min(xs), min(ys)), (max(xs), max(ys))] if self._grid else []

    def _matching(self, word: str, prefix: bool) -> set[int]:
        if not prefix:
            return self._postings.get(word, set())
        found: set[int] = set()
        for candidate in self._vocabulary:
            if candidate.startswith(word):
                found |= self._postings[candidate]
        return found

    def search(
        self,
        query: str,
        *,
        limit: int,
        autocomplete: bool,
        filters: Filters,
        center: tuple[float, float] | None = None,
    ) -> list[tuple[Place, float]]:
        words = list(dict.fromkeys(tokens(query)))
        if not words:
            return []
        hits = [self._matching(w, prefix=autocomplete and i == len(words) - 1) for i, w in enumerate(words)]
        # A result must match half the words, so it holds one of the floor(n/2)+1 rarest: only those are counted.
        rarest = sorted(range(len(words)), key=lambda i: len(hits[i]))[: len(words) // 2 + 1]
        counts: Counter[int] = Counter()
        for i in rarest:
            counts.update(hits[i])
        others = [hits[i] for i in range(len(words)) if i not in rarest]
        exact, last = set(words), words[-1]
        numbers = {w for w in words if w.isdigit()}
        scored: list[tuple[float, float, int, str, Place]] = []
        for i, matched in counts.items():
            matched += sum(1 for hit in others if i in hit)
            place = self.places[i]
            if matched * 2 < len(words) or not filters.accept(place):
                continue
            doc = self._docs[i]
            covered = sum(1 for w in doc if w in exact or (autocomplete and w.startswith(last)))
            housenumber = str(place.properties.get("housenumber", "")).split(" ")[0]
            bonus = 0.05 if housenumber and housenumber in numbers else 0.0
            score = round(min(1.0, 0.85 * matched / len(words) + 0.1 * covered / len(doc) + bonus), 4)
            distance = distance_m(center[0], center[1], place.lon, place.lat) if center else 0.0
            scored.append((-score, distance, _TYPE_ORDER[place.type], str(place.properties["id"]), place))
        best = heapq.nsmallest(limit, scored, key=lambda s: s[:4])
        return [(place, -negated) for negated, _, _, _, place in best]

    def reverse(self, lon: float, lat: float, *, limit: int, filters: Filters) -> list[tuple[Place, float, int]]:
        # Without a type filter, reverse answers house numbers, as the BAN does.
        wanted = filters if filters.type else Filters("housenumber", filters.postcode, filters.citycode)
        found = self._near_grid(lon, lat, limit, wanted)
        if found is None:
            # Far from the data or behind a rare filter: a plain scan is cheaper than walking empty rings.
            found = sorted(
                (distance_m(lon, lat, p.lon, p.lat), str(p.properties["id"]), p)
                for p in self.places
                if wanted.accept(p)
            )[:limit]
        return [(place, round(max(0.0, 1 - d / 1000), 4), round(d)) for d, _, place in found]

    def _near_grid(self, lon: float, lat: float, limit: int, wanted: Filters) -> list[tuple[float, str, Place]] | None:
        cx, cy = _cell(lon, lat)
        # Everything outside ring r is at least r cells away; a cell is narrowest along the longitude.
        cell_m = distance_m(lon, lat, lon + _CELL, lat)
        found: list[tuple[float, str, Place]] = []
        last_ring = self._max_ring(cx, cy)
        for ring in range(min(last_ring, _MAX_RINGS) + 1):
            for cell in _ring(cx, cy, ring):
                for i in self._grid.get(cell, ()):
                    place = self.places[i]
                    if wanted.accept(place):
                        found.append((distance_m(lon, lat, place.lon, place.lat), str(place.properties["id"]), place))
            found.sort(key=lambda f: f[:2])
            del found[limit:]
            if ring == last_ring or (len(found) == limit and found[-1][0] <= ring * cell_m):
                return found
        return None

    def _max_ring(self, cx: int, cy: int) -> int:
        if not self._grid:
            return -1
        return max(max(abs(x - cx), abs(y - cy)) for x, y in self._bounds)


_CELL = 0.01  # degrees, about 1 km
_MAX_RINGS = 30


def _cell(lon: float, lat: float) -> tuple[int, int]:
    return math.floor(lon / _CELL), math.floor(lat / _CELL)


def _ring(cx: int, cy: int, r: int) -> list[tuple[int, int]]:
    if r == 0:
        return [(cx, cy)]
    cells = [(x, y) for x in range(cx - r, cx + r + 1) for y in (cy - r, cy + r)]
    return cells + [(x, y) for x in (cx - r, cx + r) for y in range(cy - r + 1, cy + r)]


_TYPE_ORDER = {"housenumber": 0, "street": 1, "locality": 2, "municipality": 3}
