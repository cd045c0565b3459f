"""The arrays and string tables an index is made of: what the builder produces and the store persists."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

MUNICIPALITY, STREET = 0, 1


@dataclass(slots=True)
class IndexData:
    """Documents are municipalities and streets; streets hold house numbers in ``doc_hn_start`` ranges.

    Postings are CSR arrays over the sorted vocabulary: the documents of token ``t`` are
    ``postings[offsets[t]:offsets[t + 1]]``, sorted. ``name`` postings come from the document's own name,
    ``place`` postings from where it is (commune name and postcode of a street, postcode of a commune).
    """

    vocab: list[str]
    name_offsets: np.ndarray
    name_postings: np.ndarray
    place_offsets: np.ndarray
    place_postings: np.ndarray
    # Deletion neighbourhood of the vocabulary (SymSpell): sorted keys, and the token each came from.
    del_keys: list[str]
    del_tokens: np.ndarray
    doc_kind: np.ndarray
    doc_id: list[str]
    doc_name: list[str]
    doc_postcode: list[str]
    doc_municipality: np.ndarray
    doc_lon: np.ndarray
    doc_lat: np.ndarray
    doc_importance: np.ndarray
    doc_population: np.ndarray
    doc_ntokens: np.ndarray
    doc_hn_start: np.ndarray
    hn_number: np.ndarray
    hn_suffix: np.ndarray
    suffixes: list[str]
    hn_lon: np.ndarray
    hn_lat: np.ndarray
    hn_doc: np.ndarray
    # House-number ids sorted, for lookup; ``position`` maps a sorted id to its house number, ``rank`` back.
    hn_ids_sorted: np.ndarray
    hn_ids_position: np.ndarray
    hn_id_rank: np.ndarray
    # Uniform lon/lat grid over the house numbers, for reverse geocoding.
    grid_keys: np.ndarray
    grid_starts: np.ndarray
    grid_points: np.ndarray


def array_fields() -> list[str]:
    return [f.name for f in fields(IndexData) if f.type == "np.ndarray"]


def string_fields() -> list[str]:
    return [f.name for f in fields(IndexData) if f.type == "list[str]"]
