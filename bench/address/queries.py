"""The queries of the address benchmark, built from the data with a fixed seed.

- ``typing_queries``: what a form's autocompletion sends while someone types a real address letter by
  letter ("12 Rue de Rivoli Paris"), from the third letter of the street name to the end, and the same
  address typed with one typo (a letter replaced in a street word of 5+ letters), from the typo on.
- ``accuracy_queries``: per category, several hundred queries whose expected answer is a known address:
  the exact BAN label, a typed prefix, one typo, a street-type abbreviation, without the city, with the
  postcode as a filter, with the postcode in the text.

Both engines get exactly the same lists.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from connectors.sig.addressindex import AddressRecord, read_records
from connectors.sig.addressindex.measure import _typo as fold_with_typo
from connectors.sig.addressindex.text import fold

# Paris, Lyon and Marseille: the BAN label names the city, not the arrondissement.
DISTRICT = re.compile(r"^(Paris|Lyon|Marseille) \d+(er|e) Arrondissement$")

# Spelled-out word (folded) -> the abbreviation a person types; addok-fr's synonyms.txt and the embedded
# index's text.SYNONYMS both know every one of them.
ABBREVIATIONS = {
    "avenue": "av", "boulevard": "bd", "chemin": "ch", "docteur": "dr", "faubourg": "fg", "general": "gal",
    "impasse": "imp", "marechal": "mal", "montee": "mte", "passage": "pass", "president": "pdt", "place": "pl",
    "route": "rte", "square": "sq", "saint": "st", "sainte": "ste", "allee": "all",
}  # fmt: skip

CATEGORIES = {
    "exact": "the BAN label: `12 Rue de Rivoli 75001 Paris`",
    "prefix": "typed up to the third letter of the city: `12 Rue de Rivoli Par`",
    "one typo": "one letter replaced in the street's longest word (5+ letters), folded: `12 rue de rivxli Paris`",
    "abbreviation": "a street type or title abbreviated: `12 Av Foch Paris` (avenue → av, boulevard → bd, saint → st…)",
    "without city": "number and street only: `12 Rue de Rivoli`",
    "postcode filter": "number and street, `postcode=75001` as a filter parameter",
    "with postcode": "number, street and postcode in the text: `12 Rue de Rivoli 75001`",
}


def records(paths: Iterable[Path]) -> list[AddressRecord]:
    """House numbers of the files, in file order."""
    return [r for path in paths for r in read_records(path) if r.number is not None]


def city_name(r: AddressRecord) -> str:
    match = DISTRICT.match(r.city)
    return match.group(1) if match else r.city


def number(r: AddressRecord) -> str:
    return f"{r.number} {r.suffix}" if r.suffix else str(r.number)


def typed(r: AddressRecord) -> str:
    """The address as a person types it: number, street, city."""
    return f"{number(r)} {r.street} {city_name(r)}"


def label(r: AddressRecord) -> str:
    return f"{number(r)} {r.street} {r.postcode} {city_name(r)}"


def abbreviate(street: str) -> str | None:
    words = street.split()
    for i, word in enumerate(words):
        short = ABBREVIATIONS.get(fold(word))
        if short:
            return " ".join([*words[:i], short, *words[i + 1 :]])
    return None


# -- autocompletion ----------------------------------------------------------------------------


def _prefixes(text: str, start: int) -> list[str]:
    return [text[:n] for n in range(start, len(text) + 1) if not text[n - 1].isspace()]


def typing_queries(recs: list[AddressRecord], addresses: int, seed: int = 5) -> tuple[list[str], int, int]:
    """The texts sent while typing ``addresses`` random addresses (half of them also with a typo);
    returns (queries in typing order, clean count, typo count)."""
    rng = random.Random(seed)
    clean: list[str] = []
    typos: list[str] = []
    for i, r in enumerate(rng.sample(recs, addresses)):
        text = typed(r)
        start = len(number(r)) + 1 + 3  # the third letter of the street name
        clean.extend(_prefixes(text, start))
        if i % 2 == 0:
            wrong = fold_with_typo(r.street, rng)
            if wrong is not None:
                # The prefixes before the typo are the clean ones: send from the replaced letter on.
                folded = fold(r.street)
                first_diff = next(k for k, (a, b) in enumerate(zip(folded, wrong, strict=True)) if a != b)
                text = f"{number(r)} {wrong} {city_name(r)}"
                typos.extend(_prefixes(text, len(number(r)) + 1 + first_diff + 1))
    return clean + typos, len(clean), len(typos)


# -- accuracy ----------------------------------------------------------------------------------


@dataclass
class Query:
    category: str
    q: str
    expected: AddressRecord
    filters: dict[str, str] = field(default_factory=dict)


def accuracy_queries(recs: list[AddressRecord], per_category: int, seed: int = 7) -> list[Query]:
    rng = random.Random(seed)
    picked = rng.sample(recs, per_category)
    queries: list[Query] = []
    for r in picked:
        city = city_name(r)
        street = f"{number(r)} {r.street}"
        queries.append(Query("exact", label(r), r))
        queries.append(Query("prefix", f"{street} {city[:3].rstrip()}", r))
        queries.append(Query("without city", street, r))
        queries.append(Query("postcode filter", street, r, {"postcode": r.postcode}))
        queries.append(Query("with postcode", f"{street} {r.postcode}", r))
    # A typo needs a street word of 5+ letters, an abbreviation a street type that has one: sample among those.
    typo_rng = random.Random(seed + 1)
    with_typo = [r for r in rng.sample(recs, min(len(recs), per_category * 3)) if fold_with_typo(r.street, typo_rng)]
    for r in with_typo[:per_category]:
        wrong = fold_with_typo(r.street, typo_rng)
        queries.append(Query("one typo", f"{number(r)} {wrong} {city_name(r)}", r))
    abbreviable = [r for r in rng.sample(recs, min(len(recs), per_category * 6)) if abbreviate(r.street)]
    for r in abbreviable[:per_category]:
        queries.append(Query("abbreviation", f"{number(r)} {abbreviate(r.street)} {city_name(r)}", r))
    order = list(CATEGORIES)
    return sorted(queries, key=lambda query: order.index(query.category))


def _hn(value: str) -> str:
    return fold(value).replace(" ", "")


def is_hit(feature: dict, expected: AddressRecord) -> bool:
    """The expected BAN id, or the same house number, street and commune."""
    props = feature.get("properties", {})
    if props.get("id") == expected.id:
        return True
    return (
        _hn(str(props.get("housenumber", ""))) == _hn(number(expected))
        and fold(str(props.get("street", ""))) == fold(expected.street)
        and props.get("citycode") == expected.citycode
    )
