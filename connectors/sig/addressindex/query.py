"""Parsing a typed query: the house number and its suffix, then the terms to look up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from connectors.sig.addressindex.text import STOP_WORDS, SUFFIXES, SYNONYMS, canonical, canonical_suffix, fold

_HOUSENUMBER = re.compile(r"^(\d{1,4})([a-z]*)$")
# No address needs more words; each costs a pass over the postings, so 200 characters of "rue rue …" must not.
MAX_TERMS = 12


@dataclass(frozen=True, slots=True)
class Term:
    """One word of the query: the tokens it stands for exactly, and whether it may be unfinished."""

    word: str
    exact: tuple[str, ...]
    prefix: bool = False


@dataclass(slots=True)
class Query:
    number: int | None = None
    suffix: str = ""
    terms: list[Term] = field(default_factory=list)


def _is_suffix_word(word: str) -> bool:
    # Any lone letter may be a suffix ("123 m"), except a street type ("12 r de la paix") or an elided "l'" or "d'".
    return word in SUFFIXES or (len(word) == 1 and word.isalpha() and word not in SYNONYMS and word not in STOP_WORDS)


def parse(text: str, autocomplete: bool = True) -> Query:
    words = fold(text).split()
    query = Query()
    match = _HOUSENUMBER.match(words[0]) if len(words) > 1 else None
    # Letters glued to the number are a suffix ("12bis", "13bv"); longer ones are rather a word ("12rue").
    if match and (len(match.group(2)) <= 3 or match.group(2) in SUFFIXES):
        query.number = int(match.group(1))
        query.suffix = canonical_suffix(match.group(2)) if match.group(2) else ""
        words = words[1:]
        # "12 b rue …": a lone suffix word after the number, when more words follow it.
        if not query.suffix and len(words) > 1 and _is_suffix_word(words[0]):
            query.suffix = canonical_suffix(words[0])
            words = words[1:]
    for position, word in enumerate(words):
        last = position == len(words) - 1
        expanded = [token for token in canonical(word) if token not in STOP_WORDS]
        if last and autocomplete:
            # "av" may be "avenue" abbreviated or the start of "avril": both are tried.
            if word not in STOP_WORDS or not query.terms:
                query.terms.append(Term(word, tuple(dict.fromkeys([*expanded[:1], word])), prefix=True))
            continue
        query.terms.extend(Term(token, (token,)) for token in expanded)
    # A word said twice matches nothing more.
    terms = list(dict.fromkeys(query.terms))
    query.terms = terms if len(terms) <= MAX_TERMS else [*terms[: MAX_TERMS - 1], terms[-1]]
    return query
