from __future__ import annotations

import pytest

from connectors.sig.addressindex.query import parse


@pytest.mark.parametrize(
    ("text", "number", "suffix", "words"),
    [
        ("12 bis rue de rivoli", 12, "bis", ["rue", "rivoli"]),
        ("12bis rue de rivoli", 12, "bis", ["rue", "rivoli"]),
        ("12 b rue de rivoli", 12, "bis", ["rue", "rivoli"]),
        ("123 m bd pereire", 123, "m", ["boulevard", "pereire"]),
        ("12 r de la paix", 12, "", ["rue", "paix"]),
        ("63 l'envers du fontenil", 63, "", ["envers", "fontenil"]),
        ("4 septembre", 4, "", ["septembre"]),
        ("75001", None, "", ["75001"]),
        ("rue du 4 septembre", None, "", ["rue", "4", "septembre"]),
    ],
)
def test_house_number_and_words(text: str, number: int | None, suffix: str, words: list[str]) -> None:
    query = parse(text)
    assert (query.number, query.suffix) == (number, suffix)
    assert [term.word for term in query.terms] == words


def test_only_the_last_word_is_a_prefix_when_autocompleting() -> None:
    assert [term.prefix for term in parse("rue de riv").terms] == [False, True]
    assert [term.prefix for term in parse("rue de riv", autocomplete=False).terms] == [False, False]


def test_last_word_keeps_both_its_expansion_and_its_typed_form() -> None:
    (term,) = parse("av").terms
    assert term.exact == ("avenue", "av") and term.prefix


def test_repeated_words_count_once_and_long_queries_are_capped():
    from connectors.sig.addressindex.query import MAX_TERMS

    assert [t.word for t in parse("rue rue rue de rivoli", autocomplete=False).terms] == ["rue", "rivoli"]
    many = parse(" ".join(f"mot{n}" for n in range(40)) + " fin")
    assert len(many.terms) == MAX_TERMS
    assert many.terms[-1].word == "fin" and many.terms[-1].prefix
