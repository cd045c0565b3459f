from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sig.addressindex import AddressIndex, build_index
from connectors.sig.addressindex.grid import haversine


def test_haversine_of_one_degree_of_latitude() -> None:
    assert haversine(2.0, 48.0, [2.0], [49.0])[0] == pytest.approx(111_195, rel=1e-3)


def test_nearest_house_number_with_distance(index: AddressIndex) -> None:
    # A few metres west of 41 Rue de Rivoli (2.347911, 48.858495).
    (feature,) = index.reverse(2.34785, 48.8585)
    props = feature["properties"]
    assert (props["label"], props["type"]) == ("41 Rue de Rivoli 75001 Paris", "housenumber")
    assert props["distance"] == round(float(haversine(2.34785, 48.8585, [2.347911], [48.858495])[0]))
    assert 3 <= props["distance"] <= 6


def test_results_are_sorted_by_distance(index: AddressIndex) -> None:
    results = index.reverse(6.1065, 44.5057, limit=5)
    distances = [f["properties"]["distance"] for f in results]
    assert len(results) == 5 and distances == sorted(distances)
    assert {f["properties"]["city"] for f in results} == {"Jarjayes"}


def test_reverse_by_type(index: AddressIndex) -> None:
    (street,) = index.reverse(2.34785, 48.8585, type="street")
    assert (street["properties"]["type"], street["properties"]["id"]) == ("street", "75101_8249")
    (municipality,) = index.reverse(2.34785, 48.8585, type="municipality")
    assert municipality["properties"]["id"] == "75101"
    assert street["properties"]["distance"] == municipality["properties"]["distance"] > 0


def test_far_from_any_house_number_answers_the_nearest_street(index: AddressIndex) -> None:
    # Marseille: more than the grid's reach away from every address of the data.
    (feature,) = index.reverse(5.37, 43.30)
    assert feature["properties"]["type"] == "street"
    assert feature["properties"]["distance"] > 100_000


def test_a_nearer_lieu_dit_without_numbers_wins_over_house_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n"
        "05115_0001_00001;1;;Route de Loche;05190;05115;Remollon;6.1700;44.4600\n"
        "05115_ld01_99999;99999;;Les Granges;05190;05115;Remollon;6.1750;44.4600\n",
        encoding="utf-8",
    )
    index = build_index([path])
    near_granges = index.reverse(6.1745, 44.4600, limit=2)
    assert [f["properties"]["label"] for f in near_granges] == [
        "Les Granges 05190 Remollon",
        "1 Route de Loche 05190 Remollon",
    ]
    assert index.reverse(6.1745, 44.4600, type="housenumber")[0]["properties"]["type"] == "housenumber"
    assert index.reverse(6.1701, 44.4600, type="locality")[0]["properties"]["label"] == "Les Granges 05190 Remollon"
    assert index.reverse(6.1701, 44.4600)[0]["properties"]["label"] == "1 Route de Loche 05190 Remollon"
