"""Inverted lists over a sorted vocabulary, and the deletion neighbourhood for typos (SymSpell)."""

from __future__ import annotations

from array import array

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
        # Token ids and documents in two int32 arrays per field: a tuple per pair costs ten times more.
        self._tokens: dict[str, array[int]] = {"name": array("i"), "place": array("i")}
        self._docs: dict[str, array[int]] = {"name": array("i"), "place": array("i")}

    def add(self, field: str, words: list[str], doc: int) -> None:
        tokens, docs = self._tokens[field], self._docs[field]
        for word in words:
            tokens.append(self._ids.setdefault(word, len(self._ids)))
            docs.append(doc)

    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """The sorted vocabulary, and the new id of each token id handed out while adding."""
        vocab = sorted(self._ids)
        new_id = np.empty(len(vocab), dtype=np.int64)
        for rank, word in enumerate(vocab):
            new_id[self._ids[word]] = rank
        return vocab, new_id

    def csr(self, field: str, new_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, postings): the sorted documents of token t are ``postings[offsets[t]:offsets[t + 1]]``.

        The field's pairs are released: each field is turned into CSR once.
        """
        size = len(new_id)
        tokens, docs = self._tokens.pop(field), self._docs.pop(field)
        if not tokens:
            return np.zeros(size + 1, dtype=np.int64), np.empty(0, dtype=np.int32)
        doc = np.frombuffer(docs, dtype=np.int32).astype(np.int64)
        span = int(doc.max()) + 1
        # One int64 key per pair sorts (token, document) like a lexicographic sort, at a fraction of the memory.
        keys = new_id[np.frombuffer(tokens, dtype=np.int32)] * span + doc
        del tokens, docs, doc
        keys = np.unique(keys)
        counts = np.bincount(keys // span, minlength=size)
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64), (keys % span).astype(np.int32)


def typo_keys(vocab: list[str]) -> tuple[list[str], np.ndarray]:
    """Every one-letter deletion of the longer alphabetic tokens, sorted, with the token it came from."""
    keys: list[str] = []
    ranks = array("i")
    for rank, word in enumerate(vocab):
        if len(word) >= TYPO_MIN_LENGTH and word.isalpha():
            for key in deletions(word):
                keys.append(key)
                ranks.append(rank)
    # A stable sort of positions by key orders ties by rank (added in increasing order), as sorting (key, rank)
    # tuples did, without a tuple per key.
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], np.frombuffer(ranks, dtype=np.int32)[order]
