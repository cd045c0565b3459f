"""French folding of address text into the tokens the index stores and the query looks up.

Both sides go through the same canonical form, so an abbreviation in the data ("Av. Foch") and its spelled-out
form in the query ("avenue foch") meet, and the other way round. Stop words are dropped from the tokens only;
labels keep the names as written.
"""

from __future__ import annotations

import re

from passerelle.text import fold

__all__ = ["STOP_WORDS", "SUFFIXES", "SYNONYMS", "canonical", "fold", "tokens", "within_one_edit"]

# Abbreviation -> the spelled-out word (street types of the FANTOIR/La Poste lists, and saints).
SYNONYMS: dict[str, str] = {
    "av": "avenue", "ave": "avenue", "bd": "boulevard", "bld": "boulevard", "boul": "boulevard",
    "st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes",
    "ch": "chemin", "chem": "chemin", "che": "chemin", "imp": "impasse", "pl": "place", "rte": "route",
    "fg": "faubourg", "fbg": "faubourg", "faub": "faubourg", "all": "allee", "sq": "square", "r": "rue",
    "crs": "cours", "qu": "quai", "qua": "quai", "pas": "passage", "pass": "passage", "res": "residence",
    "lot": "lotissement", "mte": "montee", "sen": "sentier", "sent": "sentier", "ham": "hameau", "hab": "habitation",
    "prom": "promenade", "rpt": "rond point", "ld": "lieu dit", "vla": "villa", "zi": "zone industrielle",
    "za": "zone artisanale", "gal": "general", "gen": "general", "mal": "marechal", "pdt": "president",
    "dr": "docteur", "pr": "professeur", "nd": "notre dame",
}  # fmt: skip

_ORDINAL_WORDS = {
    "premier": 1, "premiere": 1, "deuxieme": 2, "second": 2, "seconde": 2, "troisieme": 3, "quatrieme": 4,
    "cinquieme": 5, "sixieme": 6, "septieme": 7, "huitieme": 8, "neuvieme": 9, "dixieme": 10, "onzieme": 11,
    "douzieme": 12, "treizieme": 13, "quatorzieme": 14, "quinzieme": 15, "seizieme": 16, "dix septieme": 17,
    "dix huitieme": 18, "dix neuvieme": 19, "vingtieme": 20,
}  # fmt: skip
# "1er", "1re", "2e", "2eme", "2nd", "3ème" (folded): all become "<n>e", as in "Paris 2e Arrondissement".
_ORDINAL_DIGITS = re.compile(r"^(\d+)(?:er|re|ere|e|eme|nd|nde|ieme)$")

STOP_WORDS = frozenset({"a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "sur", "sous"})

# House-number suffixes as typed -> as the BAN writes them.
SUFFIXES: dict[str, str] = {
    "bis": "bis", "b": "bis", "ter": "ter", "t": "ter", "quater": "quater", "q": "quater", "qua": "quater",
    "quinquies": "quinquies", "c": "c", "a": "a", "d": "d", "e": "e", "f": "f", "g": "g", "v": "v",
}  # fmt: skip


def canonical_suffix(suffix: str) -> str:
    folded = fold(suffix).replace(" ", "")
    return SUFFIXES.get(folded, folded)


def _ordinal(word: str) -> str | None:
    match = _ORDINAL_DIGITS.match(word)
    if match:
        return f"{int(match.group(1))}e"
    number = _ORDINAL_WORDS.get(word)
    return f"{number}e" if number else None


def canonical(word: str) -> list[str]:
    """The index form of one folded word: synonyms spelled out, ordinals as "<n>e"; may be several words."""
    ordinal = _ordinal(word)
    if ordinal:
        return [ordinal]
    return SYNONYMS.get(word, word).split()


def _join_compound_ordinals(words: list[str]) -> list[str]:
    joined: list[str] = []
    for word in words:
        if joined and joined[-1] == "dix" and f"dix {word}" in _ORDINAL_WORDS:
            joined[-1] = f"dix {word}"
        else:
            joined.append(word)
    return joined


def tokens(text: str) -> list[str]:
    """Searchable tokens of a name, in order, without stop words."""
    out: list[str] = []
    for word in _join_compound_ordinals(fold(text).split()):
        out.extend(token for token in canonical(word) if token not in STOP_WORDS)
    return out


def within_one_edit(a: str, b: str) -> bool:
    """Damerau distance at most one (an insertion, deletion, substitution or adjacent transposition)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :] or (a[i + 1 : i + 2] == b[i : i + 1] and a[i : i + 1] == b[i + 1 : i + 2]
                                              and a[i + 2 :] == b[i + 2 :])  # fmt: skip
    return a[i:] == b[i + 1 :]
