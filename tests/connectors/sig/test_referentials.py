"""The bundled INSEE referentials, answered in Passerelle's ``cities``/``departments``/``regions`` shapes."""

from __future__ import annotations

import gzip
import json

import pytest

from connectors.sig import referentials
from connectors.sig.referentials import cities, departments, regions
from passerelle.text import fold

ALL = 100_000


def _texts(items: list[dict]) -> list[str]:
    return [item["text"] for item in items]


def test_bundle_counts_match_the_source() -> None:
    communes = json.loads(gzip.decompress((referentials.DATA_DIR / "communes.json.gz").read_bytes()))
    types = [commune["type"] for commune in communes]
    assert types.count("commune-actuelle") == 34_969
    assert types.count("arrondissement-municipal") == 45
    assert len(types) == 34_969 + 45
    assert sum(len(commune["codesPostaux"]) for commune in communes) == len(cities(page_limit=ALL))


def test_bundle_stays_small() -> None:
    size = sum(path.stat().st_size for path in referentials.DATA_DIR.glob("*.json*"))
    assert size < 1_000_000


def test_listed_departments_and_regions() -> None:
    codes = [item["code"] for item in departments()]
    assert len(codes) == 101
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= set(codes)
    assert "20" not in codes
    assert "988" not in codes  # New Caledonia is a collectivity, not a department
    assert codes == sorted(codes)
    assert len(regions()) == 18


def test_city_item_shape() -> None:
    assert cities(id="05061.05000") == [
        {
            "id": "05061.05000",
            "text": "Gap 05000",
            "code": "05061",
            "name": "Gap",
            "zipcode": "05000",
            "population": 41293,
            "department_code": "05",
            "department_name": "Hautes-Alpes",
            "region_code": "93",
            "region_name": "Provence-Alpes-Côte d'Azur",
        }
    ]


def test_department_and_region_item_shapes() -> None:
    assert departments(id="2A") == [
        {
            "id": "2A",
            "code": "2A",
            "text": "2A - Corse-du-Sud",
            "name": "Corse-du-Sud",
            "region_code": "94",
            "region_name": "Corse",
        }
    ]
    assert regions(id="11") == [{"id": "11", "code": "11", "text": "11 - Île-de-France", "name": "Île-de-France"}]


def test_codes_keep_leading_zeros_and_corsican_letters() -> None:
    ajaccio = cities(code="2A004")
    assert {item["name"] for item in ajaccio} == {"Ajaccio"}
    assert [item["zipcode"] for item in ajaccio] == ["20000", "20090", "20167"]
    assert {item["department_code"] for item in ajaccio} == {"2A"}
    assert cities(id="01001.01400")[0]["name"] == "L'Abergement-Clémenciat"
    for item in cities(page_limit=ALL):
        assert isinstance(item["code"], str)
        assert len(item["code"]) == 5
        assert isinstance(item["zipcode"], str)
        assert len(item["zipcode"]) == 5


def test_one_item_per_postcode() -> None:
    paris = cities(code="75056", page_limit=ALL)
    assert len(paris) == 21
    assert {item["zipcode"] for item in paris} == {f"750{n:02d}" for n in range(1, 21)} | {"75116"}
    assert len({item["id"] for item in paris}) == 21


def test_unknown_ids_answer_nothing() -> None:
    assert cities(id="99999.99999") == []
    assert cities(id="05061.75001") == []  # a real commune with a postcode it does not have
    assert departments(id="20") == []
    assert departments(id="988") == []
    assert regions(id="00") == []


def test_name_search_ranks_the_exact_name_first() -> None:
    assert _texts(cities(q="gap"))[0] == "Gap 05000"
    assert _texts(cities(q="GAP"))[0] == "Gap 05000"


@pytest.mark.parametrize("q", ["st etienne", "saint etienne", "Saint-Étienne", "ST-ETIENNE", "st. étienne"])
def test_folding_and_saint_abbreviation(q: str) -> None:
    found = cities(q=q, page_limit=5)
    assert found[0]["code"] == "42218"
    assert found[0]["name"] == "Saint-Étienne"


def test_sainte_abbreviation() -> None:
    assert all(item["name"].startswith("Sainte-Marie") for item in cities(q="ste marie", page_limit=10))


def test_an_unfinished_st_still_completes_other_names() -> None:
    names = {item["name"] for item in cities(q="st", page_limit=50)}
    assert "Strasbourg" in names
    assert "Saint-Étienne" in names


def test_words_anywhere_in_the_name() -> None:
    names = {item["name"] for item in cities(q="oleron pierre", page_limit=10)}
    assert "Saint-Pierre-d'Oléron" in names


def test_postcode_search() -> None:
    found = cities(q="05000", page_limit=ALL)
    assert found[0]["text"] == "Gap 05000"
    assert {item["zipcode"] for item in found} == {"05000"}
    assert len(found) > 1
    assert {item["zipcode"][:2] for item in cities(q="05", page_limit=ALL)} == {"05"}


def test_name_and_postcode_together() -> None:
    assert _texts(cities(q="gap 05")) == ["Gap 05000"]
    assert _texts(cities(q="05000 gap")) == ["Gap 05000"]


def test_paris_then_its_arrondissements() -> None:
    found = cities(q="paris", page_limit=ALL)
    names = [item["name"] for item in found]
    assert names[:21] == ["Paris"] * 21
    assert [item["zipcode"] for item in found[:3]] == ["75001", "75002", "75003"]
    arrondissements = names[21:41]
    assert all(name.startswith("Paris ") and name.endswith("Arrondissement") for name in arrondissements)
    assert _texts(cities(q="paris 1er")) == ["Paris 1er Arrondissement 75001"]
    assert _texts(cities(q="lyon 3")) == ["Lyon 3e Arrondissement 69003"]


def test_filters() -> None:
    hautes_alpes = cities(department_code="05", page_limit=ALL)
    assert hautes_alpes
    assert {item["department_code"] for item in hautes_alpes} == {"05"}
    assert hautes_alpes[0]["name"] == "Gap"  # no query: most populous first
    corsica = cities(region_code="94", page_limit=ALL)
    assert {item["department_code"] for item in corsica} == {"2A", "2B"}
    assert cities(q="gap", department_code="80")[0]["name"] == "Gapennes"
    assert cities(zipcode="05000", code="05061") == cities(id="05061.05000")


def test_page_limit() -> None:
    assert len(cities(q="saint")) == referentials.DEFAULT_CITIES_LIMIT
    assert len(cities(q="saint", page_limit=3)) == 3
    assert cities(q="saint", page_limit=0) == []


def test_ordering() -> None:
    by_population = cities(department_code="05", ordering="-population,name", page_limit=ALL)
    populations = [item["population"] for item in by_population]
    assert populations == sorted(populations, reverse=True)
    by_name = cities(department_code="05", ordering="name", page_limit=ALL)
    folded = [fold(item["name"]) for item in by_name]
    assert folded == sorted(folded)
    assert by_name[0]["name"] != by_population[0]["name"]
    with pytest.raises(ValueError, match="unknown ordering field"):
        cities(ordering="siren")


def test_overseas_collectivity_cities_keep_their_collectivity() -> None:
    (noumea,) = cities(q="noumea")
    assert noumea["department_code"] == "988"
    assert noumea["department_name"] == "Nouvelle-Calédonie"


def test_departments_search_and_region_filter() -> None:
    assert _texts(departments(q="2a")) == ["2A - Corse-du-Sud"]
    assert _texts(departments(q="hautes alpes")) == ["05 - Hautes-Alpes"]
    assert _texts(departments(q="ARDECHE")) == ["07 - Ardèche"]
    assert _texts(departments(q="97")) == [
        "971 - Guadeloupe",
        "972 - Martinique",
        "973 - Guyane",
        "974 - La Réunion",
        "976 - Mayotte",
    ]
    paca = departments(region_code="93")
    assert [item["code"] for item in paca] == ["04", "05", "06", "13", "83", "84"]
    assert departments(q="var", region_code="93")[0]["code"] == "83"
    assert departments(region_code="00") == []


def test_regions_search() -> None:
    assert _texts(regions(q="ile de france")) == ["11 - Île-de-France"]
    assert _texts(regions(q="provence")) == ["93 - Provence-Alpes-Côte d'Azur"]
    assert regions(q="nowhere") == []


def test_fold() -> None:
    assert fold("L'Haÿ-les-Roses") == "l hay les roses"
    assert fold("Œuilly") == "oeuilly"
