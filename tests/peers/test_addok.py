"""A real addok 1.3.2 (the BAN geocoder engine, with addok-fr and addok-france) answers
the GeoCodeJSON of protocols.md §1.3 to §1.5.

``make test`` starts it (scripts/with-addok.sh) with the BAN sample of
tests/simulators/data/addresses-sample.csv loaded, and exports
``PASSERELLE_TEST_ADDOK_URL``; without it these tests are skipped. They document
the peer the base-adresse connector's remote backend talks to: the expected values
are the sample's rows.
"""

from __future__ import annotations

import csv
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ADDOK_URL = os.environ.get("PASSERELLE_TEST_ADDOK_URL")
SAMPLE = Path(__file__).parent.parent / "simulators" / "data" / "addresses-sample.csv"

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not ADDOK_URL, reason="no addok (make test starts one: scripts/with-addok.sh)"),
]


def get(path: str, **params: str | int) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body of GET ``path`` with ``params`` on the addok under test."""
    url = f"{ADDOK_URL}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def search(**params: str | int) -> list[dict[str, Any]]:
    status, body = get("/search/", **params)
    assert status == 200, body
    return body["features"]


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    """The sample's rows by BAN id."""
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f, delimiter=";")}


@pytest.mark.parametrize(
    ("row_id", "query", "label", "city"),
    [
        ("75101_8249_00041", "41 rue de rivoli paris", "41 Rue de Rivoli 75001 Paris", "Paris"),
        ("05068_0059_00096", "96 chemin de fontarache jarjayes", "96 Chemin de Fontarache 05130 Jarjayes", "Jarjayes"),
        ("05115_6fssw6_00003", "3 chemin des cerisiers remollon", "3 Chemin des Cerisiers 05190 Remollon", "Remollon"),
    ],
)
def test_search_finds_the_address_first(
    rows: dict[str, dict[str, str]], row_id: str, query: str, label: str, city: str
) -> None:
    row = rows[row_id]
    status, body = get("/search/", q=query)

    assert status == 200
    assert body["type"] == "FeatureCollection"
    assert body["query"] == query
    first = body["features"][0]
    assert first["type"] == "Feature"
    assert first["geometry"] == {"type": "Point", "coordinates": [float(row["lon"]), float(row["lat"])]}
    properties = first["properties"]
    assert properties["label"] == label
    assert properties["type"] == "housenumber"
    assert properties["id"] == row_id
    assert properties["housenumber"] == row["numero"]
    assert properties["street"] == row["nom_voie"]
    assert properties["name"] == f"{row['numero']} {row['nom_voie']}"
    assert properties["postcode"] == row["code_postal"]
    assert properties["citycode"] == row["code_insee"]
    assert properties["city"] == city
    assert isinstance(properties["score"], float)
    assert 0 < properties["score"] <= 1


def test_codes_keep_their_leading_zeros() -> None:
    properties = search(q="3 chemin des cerisiers remollon")[0]["properties"]

    assert (properties["citycode"], properties["postcode"]) == ("05115", "05190")
    assert properties["context"] == "05, Hautes-Alpes, Provence-Alpes-Côte d'Azur"


def test_a_suffixed_housenumber_is_a_string_with_its_suffix() -> None:
    properties = search(q="194 b rue de rivoli")[0]["properties"]

    assert properties["housenumber"] == "194 b"
    assert properties["id"] == "75101_8249_00194_b"
    assert properties["district"] == "Paris 1er Arrondissement"


def test_autocomplete_completes_the_last_word() -> None:
    completed = search(q="fontara", autocomplete=1)

    assert [f["properties"]["label"] for f in completed] == ["Chemin de Fontarache 05130 Jarjayes"]
    assert completed[0]["properties"]["type"] == "street"
    assert search(q="fontara", autocomplete=0) == []


@pytest.mark.parametrize(("name", "value"), [("postcode", "05190"), ("citycode", "05068")])
def test_postcode_and_citycode_filters_keep_only_matching_results(name: str, value: str) -> None:
    unfiltered = search(q="route", limit=20)
    filtered = search(q="route", limit=20, **{name: value})

    assert {f["properties"][name] for f in unfiltered} == (
        {"05190", "05130"} if name == "postcode" else {"05115", "05068"}
    )
    assert filtered
    assert {f["properties"][name] for f in filtered} == {value}
    assert len(filtered) < len(unfiltered)


def test_filters_are_echoed_as_lists() -> None:
    status, body = get("/search/", q="route", citycode="05068")

    assert status == 200
    assert body["filters"] == {"citycode": ["05068"]}


@pytest.mark.parametrize("type_", ["municipality", "street"])
def test_type_filter(type_: str) -> None:
    features = search(q="jarjayes", type=type_)

    assert features
    assert {f["properties"]["type"] for f in features} == {type_}


def test_a_municipality_result() -> None:
    properties = search(q="jarjayes", type="municipality")[0]["properties"]

    assert properties["label"] == "Jarjayes"
    assert properties["citycode"] == "05068"
    assert properties["population"] > 0
    assert "housenumber" not in properties


def test_no_match_is_an_empty_collection() -> None:
    status, body = get("/search/", q="zzzqqqxx")

    assert status == 200
    assert body["features"] == []


def test_reverse_returns_the_nearest_address_with_its_distance(rows: dict[str, dict[str, str]]) -> None:
    row = rows["05068_0059_00096"]
    status, body = get("/reverse/", lon=6.10378, lat=44.51387)

    assert status == 200
    assert "query" not in body
    assert body["limit"] == 1
    (feature,) = body["features"]
    assert feature["geometry"]["coordinates"] == [float(row["lon"]), float(row["lat"])]
    properties = feature["properties"]
    assert properties["id"] == row["id"]
    assert properties["type"] == "housenumber"
    assert properties["label"] == "96 Chemin de Fontarache 05130 Jarjayes"
    # About 1 m from the address (0.000008° of longitude, 0.00001° of latitude), in whole metres.
    assert isinstance(properties["distance"], int)
    assert 0 <= properties["distance"] <= 2


def test_reverse_with_a_type_filter() -> None:
    status, body = get("/reverse/", lon=6.10378, lat=44.51387, type="street")

    assert status == 200
    assert body["filters"] == {"type": ["street"]}
    assert [f["properties"]["label"] for f in body["features"]] == ["Chemin de Fontarache 05130 Jarjayes"]
    assert body["features"][0]["properties"]["type"] == "street"


def test_missing_q_is_a_400_with_falcon_error_body() -> None:
    assert get("/search/") == (400, {"title": "Missing parameter", "description": 'The "q" parameter is required.'})


def test_missing_lat_on_reverse_is_a_400() -> None:
    assert get("/reverse/", lon=6.1) == (
        400,
        {"title": "Missing parameter", "description": 'The "lat" parameter is required.'},
    )


def test_limit_out_of_range_is_a_400() -> None:
    status, body = get("/search/", q="paris", limit=1000)

    assert status == 400
    assert body["title"] == "Invalid parameter"
    assert '"limit"' in body["description"]
