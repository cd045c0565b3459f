from __future__ import annotations

import pytest

from connectors.sig.addressindex.text import canonical_suffix, tokens, within_one_edit


def test_accents_case_punctuation_and_hyphens_fold() -> None:
    assert tokens("Rue SAINT-Honoré") == tokens("rue saint honore") == ["rue", "saint", "honore"]
    assert tokens("Place de l'Église") == ["place", "eglise"]


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("av foch", "avenue foch"),
        ("bd voltaire", "boulevard voltaire"),
        ("st honore", "saint honore"),
        ("ste anne", "sainte anne"),
        ("chem des vignes", "chemin des vignes"),
        ("imp du puits", "impasse du puits"),
        ("pl vendome", "place vendome"),
        ("rte de gap", "route de gap"),
        ("fg montmartre", "faubourg montmartre"),
        ("all des pins", "allee des pins"),
        ("sq louvois", "square louvois"),
    ],
)
def test_abbreviations_meet_spelled_out_words(short: str, long: str) -> None:
    assert tokens(short) == tokens(long)


@pytest.mark.parametrize("written", ["1er", "premier", "1re", "première"])
def test_first_ordinal(written: str) -> None:
    assert tokens(f"Place du {written} Mai") == ["place", "1e", "mai"]


def test_other_ordinals() -> None:
    assert tokens("Paris 2e Arrondissement") == tokens("paris deuxième arrondissement")
    assert tokens("paris 2eme")[1] == tokens("2nd")[0] == "2e"
    assert tokens("dix-huitième") == tokens("18e") == ["18e"]


def test_stop_words_are_not_tokens() -> None:
    assert tokens("Rue de la Paix") == ["rue", "paix"]
    assert tokens("Allée des Tilleuls du Parc") == ["allee", "tilleuls", "parc"]


@pytest.mark.parametrize(
    ("typed", "written"), [("b", "bis"), ("BIS", "bis"), ("t", "ter"), ("q", "quater"), ("A", "a")]
)
def test_house_number_suffixes(typed: str, written: str) -> None:
    assert canonical_suffix(typed) == written


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("rivoli", "rivili", True),
        ("rivoli", "rivli", True),
        ("rivoli", "rivolii", True),
        ("rivoli", "rvioli", True),
        ("rivoli", "rivale", False),
        ("rivoli", "rivolina", False),
    ],
)
def test_within_one_edit(a: str, b: str, close: bool) -> None:
    assert within_one_edit(a, b) is close
    assert within_one_edit(b, a) is close
