"""Inverted lists over a sorted vocabulary, and the deletion neighbourhood for typos (SymSpell)."""

from __future__ import annotations

import numpy as np

TYPO_MIN_LENGTH = 5


def deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


class PostingsBuilder:
    """Collects (token, document) pairs of two fields, then renumbers tokens in sorted order.

    Sorted token ids make a prefix a contiguous range of the vocabulary, found by bisection.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pairs: dict[str, list[tuple[int, int]]] = {"name": [], "place": []}

    def add(self, field: str, words: list[str], doc: int) -> None:
        pairs = self._pairs[field]
        for word in words:
            pairs.append((self._ids.setdefault(word, len(self._ids)), doc))

    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """The sorted vocabulary, and the new id of each token id handed out while adding."""
        vocab = sorted(self._ids)
        new_id = np.empty(len(vocab), dtype=np.int64)
        for rank, word in enumerate(vocab):
            new_id[self._ids[word]] = rank
        return vocab, new_id

    def csr(self, field: str, new_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, postings): the sorted documents of token t are ``postings[offsets[t]:offsets[t + 1]]``."""
        size = len(new_id)
        if not self._pairs[field]:
            return np.zeros(size + 1, dtype=np.int64), np.empty(0, dtype=np.int32)
        table = np.array(self._pairs[field], dtype=np.int64)
        table[:, 0] = new_id[table[:, 0]]
        table = np.unique(table, axis=0)
        counts = np.bincount(table[:, 0], minlength=size)
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64), table[:, 1].astype(np.int32)


def typo_keys(vocab: list[str]) -> tuple[list[str], np.ndarray]:
    """Every one-letter deletion of the longer alphabetic tokens, sorted, with the token it came from."""
    pairs = sorted(
        (key, rank)
        for rank, word in enumerate(vocab)
        if len(word) >= TYPO_MIN_LENGTH and word.isalpha()
        for key in deletions(word)
    )
    return [key for key, _ in pairs], np.array([rank for _, rank in pairs], dtype=np.int32)
