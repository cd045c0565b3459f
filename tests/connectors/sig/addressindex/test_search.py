from __future__ import annotations

import pytest

from connectors.sig.addressindex import AddressIndex


def labels(results: list[dict]) -> list[str]:
    return [feature["properties"]["label"] for feature in results]


def top(index: AddressIndex, q: str, **kwargs: object) -> dict:
    results = index.search(q, **kwargs)
    assert results, q
    return results[0]["properties"]


def test_house_number_result_has_geocodejson_properties(index: AddressIndex) -> None:
    feature = index.search("43 rue de rivoli paris")[0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.347748, 48.858547]}
    props = feature["properties"]
    assert props["label"] == "43 Rue de Rivoli 75001 Paris"
    assert props["housenumber"] == "43" and props["name"] == "43 Rue de Rivoli" and props["street"] == "Rue de Rivoli"
    assert (props["id"], props["type"], props["postcode"], props["citycode"]) == (
        "75101_8249_00043", "housenumber", "75001", "75101",
    )  # fmt: skip
    assert (props["city"], props["district"]) == ("Paris", "Paris 1er Arrondissement")
    assert props["context"] == "75, Paris, Île-de-France"
    assert 0 < props["score"] <= 1 and 0 < props["importance"] <= 1
    # Lambert-93 of 2.347748, 48.858547, within a metre.
    assert abs(props["x"] - 652144) < 1 and abs(props["y"] - 6862254) < 1


@pytest.mark.parametrize(
    ("q", "label"),
    [
        ("194 bis rue de rivoli", "194 bis Rue de Rivoli 75001 Paris"),
        ("194b rue de rivoli", "194 bis Rue de Rivoli 75001 Paris"),
        ("194 b rue de rivoli", "194 bis Rue de Rivoli 75001 Paris"),
        ("194 rue de rivoli 75001", "194 Rue de Rivoli 75001 Paris"),
        ("123 v rue de rivoli", "123 v Rue de Rivoli 75001 Paris"),
        ("123v rue de rivoli", "123 v Rue de Rivoli 75001 Paris"),
        ("12 r de rivoli paris", "Rue de Rivoli 75001 Paris"),
    ],
)
def test_house_number_suffixes(index: AddressIndex, q: str, label: str) -> None:
    assert top(index, q)["label"] == label


def test_missing_house_number_falls_back_to_the_street(index: AddressIndex) -> None:
    props = top(index, "12 bis rue de rivoli paris")
    assert (props["type"], props["label"], props["id"]) == ("street", "Rue de Rivoli 75001 Paris", "75101_8249")


@pytest.mark.parametrize(
    ("q", "label"),
    [
        ("av des champs elysees", "Avenue des Champs-Élysées 75008 Paris"),
        ("avenue champs elysees", "Avenue des Champs-Élysées 75008 Paris"),
        ("st honore", "Rue Saint-Honoré 75001 Paris"),
        ("RUE SAINT HONORÉ", "Rue Saint-Honoré 75001 Paris"),
        ("place du premier mai", "Place du 1er Mai 75008 Paris"),
        ("pl 1er mai", "Place du 1er Mai 75008 Paris"),
        ("place vendome", "Place Vendôme 75001 Paris"),
        ("rivili", "Rue de Rivoli 75001 Paris"),
        ("rue de rivolli paris", "Rue de Rivoli 75001 Paris"),
        ("fraisy jarjayes", "Montée du Fraissy 05130 Jarjayes"),
    ],
)
def test_folding_synonyms_ordinals_and_typos(index: AddressIndex, q: str, label: str) -> None:
    assert top(index, q)["label"] == label


def test_municipality_query(index: AddressIndex) -> None:
    props = top(index, "jarjayes")
    assert (props["type"], props["label"], props["id"], props["citycode"]) == (
        "municipality", "Jarjayes", "05068", "05068",
    )  # fmt: skip
    assert props["population"] > 0
    assert props["context"] == "05, Hautes-Alpes, Provence-Alpes-Côte d'Azur"


def test_bigger_commune_ranks_first_for_the_same_street_name(index: AddressIndex) -> None:
    assert labels(index.search("rue de rivoli", limit=2)) == ["Rue de Rivoli 75001 Paris", "Rue de Rivoli 05000 Gap"]


def test_proximity_bias_changes_the_order(index: AddressIndex) -> None:
    near_gap = index.search("rue de rivoli", limit=2, lat=44.56, lon=6.08)
    assert labels(near_gap) == ["Rue de Rivoli 05000 Gap", "Rue de Rivoli 75001 Paris"]


@pytest.mark.parametrize(
    ("filters", "label"),
    [
        ({"postcode": "05000"}, "Rue de Rivoli 05000 Gap"),
        ({"citycode": "05061"}, "Rue de Rivoli 05000 Gap"),
        ({"citycode": "75101"}, "Rue de Rivoli 75001 Paris"),
    ],
)
def test_filters(index: AddressIndex, filters: dict[str, str], label: str) -> None:
    assert labels(index.search("rue de rivoli", **filters)) == [label]


def test_type_filter(index: AddressIndex) -> None:
    assert {f["properties"]["type"] for f in index.search("jarjayes", limit=10, type="street")} == {"street"}
    assert labels(index.search("jarjayes", limit=10, type="municipality")) == ["Jarjayes"]
    assert labels(index.search("43 rivoli", type="housenumber")) == ["43 Rue de Rivoli 75001 Paris"]
    assert index.search("12 bis rivoli", type="housenumber") == []
    with pytest.raises(ValueError, match="unknown type"):
        index.search("rivoli", type="building")


def test_unknown_words_and_empty_queries(index: AddressIndex) -> None:
    assert index.search("zzzz qqqq") == []
    assert index.search("") == []
    assert index.search("   ") == []


@pytest.mark.parametrize(
    ("address", "first_word", "expected"),
    [
        ("27 route du col jarjayes", "27 route", "27 Route du Col 05130 Jarjayes"),
        ("43 rue de rivoli paris", "43 rue de rivoli", "43 Rue de Rivoli 75001 Paris"),
        ("2 place vendome paris", "2 place vendome", "2 Place Vendôme 75001 Paris"),
    ],
)
def test_prefixes_typed_letter_by_letter_reach_the_address(
    index: AddressIndex, address: str, first_word: str, expected: str
) -> None:
    # From the end of the street's first significant word onwards, every prefix has the address in its top 3.
    for end in range(len(first_word), len(address) + 1):
        prefix = address[:end]
        found = labels(index.search(prefix, limit=3))
        assert expected in found, (prefix, found)


def test_without_autocomplete_the_last_word_must_be_whole(index: AddressIndex) -> None:
    assert labels(index.search("vend", autocomplete=True)) == ["Place Vendôme 75001 Paris"]
    assert index.search("vend", autocomplete=False) == []
    assert labels(index.search("vendome", autocomplete=False)) == ["Place Vendôme 75001 Paris"]


def test_lookup_by_id(index: AddressIndex) -> None:
    assert index.get("75101_8249_00043")["properties"]["label"] == "43 Rue de Rivoli 75001 Paris"
    assert index.get("75101_8249")["properties"]["label"] == "Rue de Rivoli 75001 Paris"
    assert index.get("05068")["properties"]["type"] == "municipality"
    assert index.get("nope") is None


def test_ids_returned_by_search_can_be_looked_up(index: AddressIndex) -> None:
    for feature in index.search("rue", limit=10) + index.search("43 rue de rivoli", limit=3):
        assert index.get(feature["properties"]["id"])["properties"]["label"] == feature["properties"]["label"]
