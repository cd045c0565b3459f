"""Text helpers of connectors (passerelle.text): folding, numbers, the text template."""

from __future__ import annotations

import pytest

from passerelle.text import TextTemplate, fold, parse_number


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Saint-Étienne", "saint etienne"),
        ("  L'ÉCOLE   Émile_Zola ", "l ecole emile zola"),
        ("Cœur de Ville", "coeur de ville"),
        ("Straße", "strasse"),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "number"),
    [("12", 12.0), (" 12.5 ", 12.5), ("95,5", 95.5), ("1 250", 1250.0), ("1\u202f250,5", 1250.5), ("abc", None)],
)
def test_parse_number(text, number):
    assert parse_number(text) == number
    assert parse_number("nan") is None


def test_text_template():
    template = TextTemplate.parse("{nom} ({code postal}) {{brut}}")
    assert template.columns == ["nom", "code postal"]
    assert template.render({"nom": "Piscine", "code postal": "05000"}) == "Piscine (05000) {brut}"
    assert TextTemplate.parse("nom").render({"nom": "Gap"}) == "Gap"


def test_fold_keeps_ligatures_and_hyphens_comparable():
    # The referentials, the address index and csvdatasource all compare through this one function.
    assert fold("Saint-Jean-de-Luz") == fold("saint jean de luz")
    assert fold("Œuvre") == "oeuvre"
