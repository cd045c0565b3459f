"""Building the index arrays from address records: streets, municipalities, postings, typo keys, grid."""

from __future__ import annotations

import gzip
import json
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np

from connectors.sig import referentials
from connectors.sig.addressindex.data import MUNICIPALITY, STREET, IndexData
from connectors.sig.addressindex.grid import build_grid
from connectors.sig.addressindex.postings import PostingsBuilder, typo_keys
from connectors.sig.addressindex.sources import AddressRecord
from connectors.sig.addressindex.text import canonical_suffix, fold, tokens

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 10_000
ID_CHUNK = 65_536
# log10 of the population that weighs 1 (Paris): importance grows with the order of magnitude.
_LOG_TOP_POPULATION = math.log10(2_200_000)
_STREET_SIZE_FOR_FULL_WEIGHT = 300


@cache
def _communes(department: str) -> dict[str, dict]:
    return {item["code"]: item for item in referentials.cities(department_code=department, page_limit=1_000_000)}


def department_code(citycode: str) -> str:
    return citycode[:3] if citycode.startswith("97") else citycode[:2]


def commune_info(citycode: str) -> dict | None:
    """The referential item of a commune (population, department and region names), if known."""
    return _communes(department_code(citycode)).get(citycode)


def _populations() -> dict[str, int]:
    """The population of the communes ``cities`` knows (those with a postcode), read from the bundled file.

    The build needs nothing else: the referentials ``commune_info`` loads keep every French commune with its
    search forms in memory (about 40 MB) for the rest of the process. Parsing the file takes about 35 MB for
    a moment, so it is done before any address is read; the table kept is about 4 MB.
    """
    communes = json.loads(gzip.decompress((referentials.DATA_DIR / "communes.json.gz").read_bytes()))
    return {c["code"]: int(c["population"]) for c in communes if c["codesPostaux"]}


class _Accumulator:
    """Columns of the records read so far, kept in compact arrays: a million Python objects would not fit."""

    def __init__(self) -> None:
        self.streets: dict[tuple[str, str], int] = {}
        self.street_city: list[str] = []
        self.postcodes: dict[str, int] = {}
        self.suffixes: dict[str, int] = {"": 0}
        self.sid = array("i")
        self.number = array("i")
        self.suffix = array("i")
        self.postcode = array("i")
        self.lon = array("d")
        self.lat = array("d")
        # Ids go into fixed-width byte arrays a chunk at a time: a str object per row costs three times more.
        self._pending_ids: list[bytes] = []
        self._id_chunks: list[np.ndarray] = []

    def add(self, record: AddressRecord) -> None:
        key = (record.citycode, record.street)
        sid = self.streets.setdefault(key, len(self.streets))
        if sid == len(self.street_city):
            self.street_city.append(record.city)
        self.sid.append(sid)
        self.number.append(-1 if record.number is None else record.number)
        suffix = canonical_suffix(record.suffix) if record.suffix else ""
        self.suffix.append(self.suffixes.setdefault(suffix, len(self.suffixes)))
        self.postcode.append(self.postcodes.setdefault(record.postcode, len(self.postcodes)))
        self.lon.append(record.lon)
        self.lat.append(record.lat)
        self._pending_ids.append(record.id.encode())
        if len(self._pending_ids) == ID_CHUNK:
            self._flush_ids()

    def _flush_ids(self) -> None:
        if self._pending_ids:
            self._id_chunks.append(np.array(self._pending_ids, dtype=np.bytes_))
            self._pending_ids = []

    def take_ids(self) -> np.ndarray:
        """All ids in one array; the chunks are dropped, so that only one copy is ever alive."""
        self._flush_ids()
        chunks, self._id_chunks = self._id_chunks, []
        return np.concatenate(chunks) if chunks else np.empty(0, dtype="S1")

    def release_columns(self) -> None:
        # The sorted copies replace the columns: dropping these early lowers the build's peak memory.
        for name in ("sid", "number", "suffix", "postcode", "lon", "lat"):
            setattr(self, name, array(getattr(self, name).typecode))


def _street_id(first_id: str, citycode: str, name: str) -> str:
    # BAN and BAL ids are <citycode>_<street>_<number>[_suffix]: the street id is the first two parts.
    parts = first_id.split("_")
    if len(parts) >= 3 and parts[0] == citycode:
        return "_".join(parts[:2])
    return f"{citycode}_{fold(name).replace(' ', '-')}"


def build_data(records: Iterable[AddressRecord], progress: Progress | None = None, total: int = 0) -> IndexData:
    populations = _populations()
    acc = _Accumulator()
    done = 0
    for done, record in enumerate(records, start=1):
        acc.add(record)
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress:
        progress(done, max(total, done))
    return _assemble(acc, populations)


def _assemble(acc: _Accumulator, populations: dict[str, int]) -> IndexData:
    suffix_names = sorted(acc.suffixes, key=acc.suffixes.__getitem__)
    # House numbers sorted by street, then number, then suffix as written ("" before "bis" before "ter").
    suffix_rank = np.argsort(np.argsort(np.array(suffix_names, dtype=object)))
    sid = np.frombuffer(acc.sid, dtype=np.int32)
    number = np.frombuffer(acc.number, dtype=np.int32)
    suffix = np.frombuffer(acc.suffix, dtype=np.int32)
    order = np.lexsort((suffix_rank[suffix], number, sid))
    sid, number, suffix = sid[order], number[order], suffix[order]
    lon = np.frombuffer(acc.lon, dtype=np.float64)[order]
    lat = np.frombuffer(acc.lat, dtype=np.float64)[order]
    postcode_names = sorted(acc.postcodes, key=acc.postcodes.__getitem__)
    postcode = np.frombuffer(acc.postcode, dtype=np.int32)[order]
    ids = acc.take_ids()[order]
    del order
    acc.release_columns()
    street_keys = sorted(acc.streets, key=acc.streets.__getitem__)

    citycodes = sorted({citycode for citycode, _ in street_keys})
    n_muni, n_streets = len(citycodes), len(street_keys)
    n_docs = n_muni + n_streets
    muni_of = {code: i for i, code in enumerate(citycodes)}
    bounds = np.searchsorted(sid, np.arange(n_streets + 1))

    numbered = number >= 0
    doc_hn_start = np.zeros(n_docs + 1, dtype=np.int64)
    kept = np.flatnonzero(numbered)
    # Only numbered rows become house numbers; a row without number only places its street.
    kept_bounds = np.searchsorted(sid[kept], np.arange(n_streets + 1))
    doc_hn_start[n_muni:] = kept_bounds

    doc_kind = np.full(n_docs, STREET, dtype=np.int8)
    doc_kind[:n_muni] = MUNICIPALITY
    doc_id: list[str] = list(citycodes)
    doc_name: list[str] = [""] * n_muni
    doc_postcode: list[str] = [""] * n_muni
    doc_municipality = np.zeros(n_docs, dtype=np.int32)
    doc_municipality[:n_muni] = np.arange(n_muni)
    doc_lon = np.zeros(n_docs)
    doc_lat = np.zeros(n_docs)
    doc_importance = np.zeros(n_docs, dtype=np.float32)
    doc_population = np.zeros(n_docs, dtype=np.int32)
    doc_ntokens = np.zeros(n_docs, dtype=np.int16)
    city_names: dict[str, Counter[str]] = {code: Counter() for code in citycodes}
    city_postcodes: dict[str, Counter[str]] = {code: Counter() for code in citycodes}
    seen_ids: set[str] = set(citycodes)

    postings = PostingsBuilder()
    street_sizes = np.diff(kept_bounds)
    for s, (citycode, street) in enumerate(street_keys):
        doc = n_muni + s
        start, end = int(bounds[s]), int(bounds[s + 1])
        rows = np.arange(start, end)
        numbered_rows = rows[numbered[start:end]]
        # The middle house number stands on the street, where the centroid of a bent street may not.
        middle = int(numbered_rows[len(numbered_rows) // 2]) if len(numbered_rows) else start
        street_postcode = postcode_names[int(np.bincount(postcode[start:end]).argmax())]
        doc_name.append(street)
        doc_postcode.append(street_postcode)
        doc_municipality[doc] = muni_of[citycode]
        doc_lon[doc], doc_lat[doc] = lon[middle], lat[middle]
        city_names[citycode][acc.street_city[s]] += end - start
        city_postcodes[citycode][street_postcode] += end - start
        middle_id = ids[middle].decode()
        street_id = middle_id if not len(numbered_rows) else _street_id(middle_id, citycode, street)
        while street_id in seen_ids:
            street_id += "~"
        seen_ids.add(street_id)
        doc_id.append(street_id)
        name_tokens = tokens(street)
        doc_ntokens[doc] = max(len(name_tokens), 1)
        postings.add("name", name_tokens, doc)
        postings.add("place", [street_postcode], doc)

    del postcode, seen_ids
    for m, citycode in enumerate(citycodes):
        name = city_names[citycode].most_common(1)[0][0]
        doc_name[m] = name
        doc_postcode[m] = city_postcodes[citycode].most_common(1)[0][0]
        population = populations.get(citycode)
        doc_population[m] = population or 0
        known = population is not None
        doc_importance[m] = min(1.0, math.log10(population + 1) / _LOG_TOP_POPULATION) if known else 0.3
        in_city = doc_municipality[n_muni:] == m
        doc_lon[m] = round(float(doc_lon[n_muni:][in_city].mean()), 6)
        doc_lat[m] = round(float(doc_lat[n_muni:][in_city].mean()), 6)
        name_tokens = tokens(name)
        doc_ntokens[m] = max(len(name_tokens), 1)
        postings.add("name", name_tokens, m)
        postings.add("place", sorted(city_postcodes[citycode]), m)

    # A street weighs by its commune and, less, by its size: an avenue before a cul-de-sac of the same name.
    size_weight = np.minimum(1.0, np.log1p(street_sizes) / math.log1p(_STREET_SIZE_FOR_FULL_WEIGHT))
    doc_importance[n_muni:] = 0.6 * doc_importance[doc_municipality[n_muni:]] + 0.4 * size_weight
    for s, (citycode, _street) in enumerate(street_keys):
        postings.add("place", tokens(doc_name[muni_of[citycode]]), n_muni + s)

    vocab, new_id = postings.vocabulary()
    name_offsets, name_postings = postings.csr("name", new_id)
    place_offsets, place_postings = postings.csr("place", new_id)
    del postings, new_id
    del_keys, del_tokens = typo_keys(vocab)

    # The house numbers are the numbered rows; when every row is numbered the sorted columns are used as they
    # are, and otherwise each full column is dropped as soon as its subset is taken.
    every = len(kept) == len(number)
    hn_lon = lon if every else lon[kept]
    hn_lat = lat if every else lat[kept]
    hn_ids = ids if every else ids[kept]
    hn_number = number if every else number[kept]
    hn_suffix = (suffix if every else suffix[kept]).astype(np.int16)
    hn_doc = (sid if every else sid[kept]) + np.int32(n_muni)
    del lon, lat, ids, number, suffix, sid
    id_order = np.argsort(hn_ids, kind="stable").astype(np.int32)
    id_rank = np.empty(len(id_order), dtype=np.int32)
    id_rank[id_order] = np.arange(len(id_order), dtype=np.int32)
    grid_keys, grid_starts, grid_points = build_grid(hn_lon, hn_lat)
    return IndexData(
        vocab=vocab,
        name_offsets=name_offsets,
        name_postings=name_postings,
        place_offsets=place_offsets,
        place_postings=place_postings,
        del_keys=del_keys,
        del_tokens=del_tokens,
        doc_kind=doc_kind,
        doc_id=doc_id,
        doc_name=doc_name,
        doc_postcode=doc_postcode,
        doc_municipality=doc_municipality,
        doc_lon=doc_lon,
        doc_lat=doc_lat,
        doc_importance=doc_importance,
        doc_population=doc_population,
        doc_ntokens=doc_ntokens,
        doc_hn_start=doc_hn_start,
        hn_number=hn_number.astype(np.int32, copy=False),
        hn_suffix=hn_suffix,
        suffixes=suffix_names,
        hn_lon=hn_lon,
        hn_lat=hn_lat,
        hn_doc=hn_doc.astype(np.int32, copy=False),
        hn_ids_sorted=hn_ids[id_order],
        hn_ids_position=id_order,
        hn_id_rank=id_rank,
        grid_keys=grid_keys,
        grid_starts=grid_starts,
        grid_points=grid_points,
    )
