"""The embedded address index: search with prefixes, typos and filters, reverse geocoding, lookup by id."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from connectors.sig.addressindex import store
from connectors.sig.addressindex.build import Progress, build_data
from connectors.sig.addressindex.data import MUNICIPALITY, STREET, IndexData
from connectors.sig.addressindex.grid import haversine, nearby
from connectors.sig.addressindex.postings import TYPO_MIN_LENGTH, deletions
from connectors.sig.addressindex.query import Query, Term, parse
from connectors.sig.addressindex.results import feature
from connectors.sig.addressindex.sources import count_rows, read_records
from connectors.sig.addressindex.text import fold, within_one_edit

TYPES = ("housenumber", "street", "locality", "municipality")
# Match quality of one query word against a token.
EXACT, PREFIX, TYPO = 1.0, 0.9, 0.7
# A one-letter prefix would pull most of the vocabulary; the first tokens of its range are enough.
MAX_PREFIX_TOKENS = 400
# Candidates whose house numbers are checked, per result asked.
RERANK_FACTOR = 10


def build_index(paths: Iterable[str | Path], *, progress: Progress | None = None) -> AddressIndex:
    """An index of the addresses of every file (any format sources.py reads); progress gets (done, total) rows."""
    paths = [Path(path) for path in paths]
    total = sum(count_rows(path) for path in paths) if progress else 0
    records = (record for path in paths for record in read_records(path))
    return AddressIndex(build_data(records, progress, total))


class AddressIndex:
    def __init__(self, data: IndexData) -> None:
        self.data = data
        self._doc_ids = {doc_id: doc for doc, doc_id in enumerate(data.doc_id)}
        self._postcodes = np.array(data.doc_postcode, dtype=str)
        self._bare_streets = np.flatnonzero((data.doc_kind == STREET) & (np.diff(data.doc_hn_start) == 0))

    @classmethod
    def load(cls, directory: str | Path) -> AddressIndex:
        return cls(store.load(directory))

    def save(self, directory: str | Path) -> Path:
        return store.save(self.data, directory)

    # --- token lookup ---------------------------------------------------------------------------------
    def _token(self, word: str) -> int | None:
        vocab = self.data.vocab
        i = bisect.bisect_left(vocab, word)
        return i if i < len(vocab) and vocab[i] == word else None

    def _prefix_tokens(self, prefix: str) -> range:
        vocab = self.data.vocab
        start = bisect.bisect_left(vocab, prefix)
        end = bisect.bisect_left(vocab, prefix + "\uffff", lo=start)
        return range(start, min(end, start + MAX_PREFIX_TOKENS))

    def _typo_tokens(self, word: str) -> set[int]:
        data = self.data
        found: set[int] = set()
        for key in {word} | deletions(word):
            lo = bisect.bisect_left(data.del_keys, key)
            hi = bisect.bisect_right(data.del_keys, key, lo=lo)
            found.update(int(t) for t in data.del_tokens[lo:hi])
            if key != word:
                token = self._token(key)
                if token is not None:
                    found.add(token)
        return {t for t in found if within_one_edit(word, data.vocab[t])}

    def _term_qualities(self, term: Term) -> tuple[np.ndarray, np.ndarray]:
        """Per document, the best match quality of the term in its name, and in its place."""
        data = self.data
        weighted: dict[int, float] = {}
        if term.prefix:
            for t in self._prefix_tokens(term.word):
                weighted[t] = PREFIX
        if len(term.word) >= TYPO_MIN_LENGTH and term.word.isalpha():
            for t in self._typo_tokens(term.word):
                weighted.setdefault(t, TYPO)
        for word in term.exact:
            t = self._token(word)
            if t is not None:
                weighted[t] = EXACT
        n_docs = len(data.doc_kind)
        name_q = np.zeros(n_docs, dtype=np.float32)
        place_q = np.zeros(n_docs, dtype=np.float32)
        for quality in (TYPO, PREFIX, EXACT):
            chosen = [t for t, q in weighted.items() if q == quality]
            if not chosen:
                continue
            # Ascending quality: a better match overwrites a worse one of the same document.
            for offsets, postings, target in (
                (data.name_offsets, data.name_postings, name_q),
                (data.place_offsets, data.place_postings, place_q),
            ):
                docs = np.concatenate([postings[offsets[t] : offsets[t + 1]] for t in chosen])
                target[docs] = quality
        return name_q, place_q

    # --- search -------------------------------------------------------------------------------------
    def search(
        self,
        q: str,
        limit: int = 5,
        *,
        autocomplete: bool = True,
        postcode: str | None = None,
        citycode: str | None = None,
        type: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> list[dict[str, Any]]:
        """GeoCodeJSON features for a typed query, best first, ``score`` in 0..1."""
        if type is not None and type not in TYPES:
            raise ValueError(f"unknown type {type!r}, expected one of {TYPES}")
        query = parse(q, autocomplete)
        if not query.terms or limit <= 0:
            return []
        data = self.data
        n_terms = len(query.terms)
        matched = np.zeros(len(data.doc_kind), dtype=np.int16)
        quality = np.zeros(len(data.doc_kind), dtype=np.float32)
        name_hits = np.zeros(len(data.doc_kind), dtype=np.int16)
        for term in query.terms:
            name_q, place_q = self._term_qualities(term)
            best = np.maximum(name_q, place_q)
            matched += best > 0
            quality += best
            name_hits += name_q > 0
        mask = self._filter_mask(postcode, citycode, type)
        candidates = np.flatnonzero(mask & (matched == n_terms))
        if not len(candidates) and n_terms > 1:
            # One word matching nothing (a typo too far, a word the data lacks) should not empty the answer.
            candidates = np.flatnonzero(mask & (matched == n_terms - 1))
        if not len(candidates):
            return []
        coverage = np.minimum(name_hits[candidates] / data.doc_ntokens[candidates], 1.0)
        score = 0.65 * quality[candidates] / n_terms + 0.15 * coverage + 0.1 * data.doc_importance[candidates]
        if lat is not None and lon is not None:
            km = haversine(lon, lat, data.doc_lon[candidates], data.doc_lat[candidates]) / 1000
            score = 0.85 * score + 0.15 / (1 + km)
        keep = min(len(candidates), max(limit * RERANK_FACTOR, 50))
        top = np.argpartition(-score, keep - 1)[:keep]
        ranked: list[tuple[float, int, int | None]] = []
        for i in top:
            doc = int(candidates[i])
            hn = self._housenumber(doc, query) if query.number is not None and data.doc_kind[doc] == STREET else None
            if type == "housenumber" and hn is None:
                continue
            # The house number asked for, when the street has it, is the surest sign of the right street.
            bonus = 0.1 if hn is not None else (0.05 if query.number is None else 0.0)
            ranked.append((float(score[i]) + bonus, doc, hn))
        ranked.sort(key=lambda item: (-item[0], data.doc_name[item[1]]))
        return [self._feature(doc, hn, s) for s, doc, hn in ranked[:limit]]

    def _filter_mask(self, postcode: str | None, citycode: str | None, type: str | None) -> np.ndarray:
        data = self.data
        mask = np.ones(len(data.doc_kind), dtype=bool)
        if type == "municipality":
            mask &= data.doc_kind == MUNICIPALITY
        elif type in ("street", "housenumber"):
            mask &= data.doc_kind == STREET
            mask[self._bare_streets] = False
        elif type == "locality":
            mask &= False
            mask[self._bare_streets] = True
        if citycode:
            muni = self._doc_ids.get(citycode)
            if muni is None or data.doc_kind[muni] != MUNICIPALITY:
                return np.zeros(len(data.doc_kind), dtype=bool)
            mask &= data.doc_municipality == muni
        if postcode:
            mask &= self._postcodes == postcode
        return mask

    def _housenumber(self, doc: int, query: Query) -> int | None:
        data = self.data
        start, end = int(data.doc_hn_start[doc]), int(data.doc_hn_start[doc + 1])
        numbers = data.hn_number[start:end]
        lo, hi = np.searchsorted(numbers, query.number, "left"), np.searchsorted(numbers, query.number, "right")
        for hn in range(start + int(lo), start + int(hi)):
            if data.suffixes[data.hn_suffix[hn]] == query.suffix:
                return hn
        return None

    def _feature(self, doc: int, hn: int | None, score: float, distance: float | None = None) -> dict[str, Any]:
        data = self.data
        muni = int(data.doc_municipality[doc])
        common = {
            "postcode": data.doc_postcode[doc],
            "citycode": data.doc_id[muni],
            "commune": data.doc_name[muni],
            "importance": float(data.doc_importance[doc]),
            "score": score,
            "distance": distance,
        }
        if hn is not None:
            suffix = data.suffixes[data.hn_suffix[hn]]
            number = f"{data.hn_number[hn]} {suffix}" if suffix else str(data.hn_number[hn])
            return feature(
                "housenumber",
                id=data.hn_ids_sorted[data.hn_id_rank[hn]].decode(),
                name=data.doc_name[doc],
                lon=float(data.hn_lon[hn]),
                lat=float(data.hn_lat[hn]),
                housenumber=number,
                street=data.doc_name[doc],
                **common,
            )
        kind = "municipality" if data.doc_kind[doc] == MUNICIPALITY else "street"
        if kind == "street" and data.doc_hn_start[doc] == data.doc_hn_start[doc + 1]:
            kind = "locality"
        return feature(
            kind,
            id=data.doc_id[doc],
            name=data.doc_name[doc],
            lon=float(data.doc_lon[doc]),
            lat=float(data.doc_lat[doc]),
            population=int(data.doc_population[doc]),
            **common,
        )

    def streets(
        self, *, citycode: str | None = None, postcode: str | None = None, limit: int = 30
    ) -> list[dict[str, Any]]:
        """Streets and lieux-dits of a commune or postcode (or all), by folded name: a select list."""
        data = self.data
        mask = self._filter_mask(postcode, citycode, None) & (data.doc_kind == STREET)
        docs = np.flatnonzero(mask)
        order = sorted(docs.tolist(), key=lambda doc: (fold(data.doc_name[doc]), data.doc_postcode[doc]))
        return [self._feature(doc, None, 1.0) for doc in order[: max(limit, 0)]]

    # --- lookup and reverse -------------------------------------------------------------------------
    def get(self, id: str) -> dict[str, Any] | None:
        """The feature of a house number, street or municipality id returned earlier, or None."""
        doc = self._doc_ids.get(id)
        if doc is not None:
            return self._feature(doc, None, 1.0)
        data = self.data
        key = id.encode()
        pos = int(np.searchsorted(data.hn_ids_sorted, key))
        if pos < len(data.hn_ids_sorted) and data.hn_ids_sorted[pos] == key:
            hn = int(data.hn_ids_position[pos])
            return self._feature(int(data.hn_doc[hn]), hn, 1.0)
        return None

    def reverse(self, lon: float, lat: float, limit: int = 1, *, type: str | None = None) -> list[dict[str, Any]]:
        """The nearest house numbers (or their streets or municipalities, per ``type``), with ``distance`` in m."""
        if type is not None and type not in TYPES:
            raise ValueError(f"unknown type {type!r}, expected one of {TYPES}")
        data = self.data
        if limit <= 0:
            return []
        points = nearby(data.grid_keys, data.grid_starts, data.grid_points, lon, lat, max(limit, 1) * 8)
        if not len(points) or type == "locality":
            return self._reverse_docs(lon, lat, limit, type)
        # The house numbers near by, and the lieux-dits without numbers, which the grid does not hold (they are few).
        distances = haversine(lon, lat, data.hn_lon[points], data.hn_lat[points])
        hns, docs = points.astype(np.int64), data.hn_doc[points].astype(np.int64)
        if len(self._bare_streets) and type != "housenumber":
            bare = haversine(lon, lat, data.doc_lon[self._bare_streets], data.doc_lat[self._bare_streets])
            distances = np.concatenate((distances, bare))
            hns = np.concatenate((hns, np.full(len(bare), -1)))
            docs = np.concatenate((docs, self._bare_streets))
        results: list[dict[str, Any]] = []
        seen: set[tuple[int, int]] = set()
        for i in np.argsort(distances, kind="stable"):
            distance, hn, doc = float(distances[i]), int(hns[i]), int(docs[i])
            if type == "municipality":
                doc = int(data.doc_municipality[doc])
            shown = hn if hn >= 0 and type in (None, "housenumber") else None
            key = (doc, -1 if shown is None else shown)
            if key in seen:
                continue
            seen.add(key)
            results.append(self._feature(doc, shown, 1 / (1 + distance / 100), distance))
            if len(results) == limit:
                break
        return results

    def _reverse_docs(self, lon: float, lat: float, limit: int, type: str | None) -> list[dict[str, Any]]:
        # Lieux-dits, or no house number within the grid's reach: the nearest documents of the type.
        data = self.data
        if type == "housenumber":
            return []
        if type == "locality":
            docs = self._bare_streets
        else:
            docs = np.flatnonzero(data.doc_kind == (MUNICIPALITY if type == "municipality" else STREET))
        if not len(docs):
            return []
        distances = haversine(lon, lat, data.doc_lon[docs], data.doc_lat[docs])
        order = np.argsort(distances)[:limit]
        return [
            self._feature(int(docs[i]), None, 1 / (1 + float(distances[i]) / 100), float(distances[i])) for i in order
        ]
