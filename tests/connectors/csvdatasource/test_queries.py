"""Named queries: query/<name>/ with filters, parameters, projection, order, distinct, structure."""

from __future__ import annotations

import pytest

from tests.connectors.csvdatasource.conftest import get_json, ids

QUERIES = {
    "par-type": {
        "description": "Facilities of one type",
        "filters": [{"column": "type", "op": "eq", "parameter": "type"}],
    },
    "hors-gap": {"filters": [{"column": "code_postal", "op": "ne", "value": "05000"}]},
    "contient": {"filters": [{"column": "nom", "op": "contains", "parameter": "mot"}]},
    "piscines": {"filters": [{"column": "nom", "op": "startswith", "value": "piscine"}]},
    "parmi": {"filters": [{"column": "type", "op": "in", "value": ["piscine", "stade"]}]},
    "types-parmi": {"filters": [{"column": "type", "op": "in", "parameter": "types"}]},
    "grandes": {"filters": [{"column": "places", "op": "ge", "value": 250}]},
    "entre": {
        "filters": [
            {"column": "places", "op": "gt", "parameter": "min"},
            {"column": "places", "op": "le", "parameter": "max"},
        ],
        "order": ["places"],
    },
    "petites": {"filters": [{"column": "places", "op": "lt", "value": "100"}]},
    "optionnel": {"filters": [{"column": "type", "parameter": "type", "required": False}]},
    "par-places": {"order": ["-places"], "projection": ["id", "places"]},
    "par-cp": {"order": ["code_postal", "-places"], "projection": {"cp": "code_postal", "nom": "text"}},
    "types": {"distinct": "type", "order": ["type"], "projection": {"id": "type", "text": "type"}},
    "cp-type": {"distinct": ["code_postal", "type"], "projection": ["code_postal", "type"]},
    "plus-grande": {"order": ["-places"], "structure": "one"},
    "aucune": {"filters": [{"column": "type", "value": "patinoire"}], "structure": "one"},
    "une-par-cp": {"distinct": "code_postal", "structure": "keyed-distinct", "projection": ["id"]},
    "cassee": {"filters": [{"column": "surface", "op": "gt", "value": "10"}], "order": ["-hauteur"]},
}


@pytest.fixture
async def queries(make_csv):
    return await make_csv(queries=QUERIES)


async def run(client, url):
    payload = await get_json(client, f"/csvdatasource/test/query/{url}")
    assert payload["err"] == 0, payload
    return payload["data"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("par-type/?type=piscine", ["5", "1"]),
        ("par-type/?type=ECOLE", ["7", "2"]),  # case and accents ignored
        ("par-type/?type=patinoire", []),
        ("hors-gap/", ["3", "5", "1"]),
        ("contient/?mot=emile", ["2"]),
        ("contient/?mot=de", ["4", "5", "6"]),  # a substring: "stade" holds "de"
        ("contient/?mot=De%20La", ["5"]),
        ("piscines/", ["5", "1"]),
        ("parmi/", ["5", "1", "6"]),
        ("types-parmi/?types=stade,%20bibliotheque", ["3", "6"]),
        ("grandes/", ["4", "1", "6"]),
        ("entre/?min=95.5&max=250", ["5", "2", "1"]),
        ("entre/?min=95&max=120", ["7", "5"]),  # "95,5" in the file is a French decimal
        ("petites/", ["3", "7"]),
        ("optionnel/?type=stade", ["6"]),
        ("optionnel/", ["3", "7", "2", "4", "5", "1", "6"]),
        ("optionnel/?type=", ["3", "7", "2", "4", "5", "1", "6"]),
    ],
)
async def test_filters(hub_client, queries, url, expected):
    assert ids(await run(hub_client, url)) == expected


async def test_filters_return_whole_items_by_default(hub_client, queries):
    assert await run(hub_client, "par-type/?type=stade") == [
        {
            "id": "6",
            "text": "Stade Zéphyr",
            "nom": "Stade Zéphyr",
            "code_postal": "05000",
            "type": "stade",
            "places": "1500",
        }
    ]


async def test_q_id_and_limit_narrow_a_query(hub_client, queries):
    assert ids(await run(hub_client, "par-type/?type=piscine&q=bouin")) == ["1"]
    assert ids(await run(hub_client, "par-type/?type=piscine&id=5")) == ["5"]
    assert ids(await run(hub_client, "par-type/?type=piscine&id=6")) == []
    assert ids(await run(hub_client, "par-type/?type=piscine&limit=1")) == ["5"]
    assert ids(await run(hub_client, "par-type/?type=piscine&page_limit=1")) == ["5"]


async def test_order_and_projection(hub_client, queries):
    assert await run(hub_client, "par-places/?limit=3") == [
        {"id": "6", "places": "1500"},
        {"id": "4", "places": "300"},
        {"id": "1", "places": "250"},
    ]
    # Several keys: by postcode, then by places descending; the projection renames.
    assert await run(hub_client, "par-cp/") == [
        {"cp": "05000", "nom": "Stade Zéphyr"},
        {"cp": "05000", "nom": "gymnase des Écrins"},
        {"cp": "05000", "nom": "École Émile Zola"},
        {"cp": "05000", "nom": "Ecole Ampère"},
        {"cp": "05230", "nom": "Piscine de la Bâtie"},
        {"cp": "75012", "nom": "Bibliothèque Saint-Éloi"},
        {"cp": "75016", "nom": "Piscine Jean Bouin"},
    ]


async def test_distinct(hub_client, queries):
    assert await run(hub_client, "types/") == [
        {"id": "bibliothèque", "text": "bibliothèque"},
        {"id": "école", "text": "école"},
        {"id": "gymnase", "text": "gymnase"},
        {"id": "piscine", "text": "piscine"},
        {"id": "stade", "text": "stade"},
    ]
    assert await run(hub_client, "cp-type/") == [
        {"code_postal": "75012", "type": "bibliothèque"},
        {"code_postal": "05000", "type": "école"},
        {"code_postal": "05000", "type": "gymnase"},
        {"code_postal": "05230", "type": "piscine"},
        {"code_postal": "75016", "type": "piscine"},
        {"code_postal": "05000", "type": "stade"},
    ]


async def test_structures(hub_client, queries):
    assert (await run(hub_client, "plus-grande/"))["id"] == "6"
    assert await run(hub_client, "aucune/") is None
    assert await run(hub_client, "une-par-cp/") == {
        "75012": {"id": "3"},
        "05000": {"id": "7"},
        "05230": {"id": "5"},
        "75016": {"id": "1"},
    }


async def test_path_without_trailing_slash(hub_client, queries):
    assert ids(await run(hub_client, "piscines")) == ["5", "1"]


@pytest.mark.parametrize(
    ("url", "status", "err_class", "message"),
    [
        ("par-type/", 400, "WrongParameter", "missing parameter 'type' (query 'par-type' needs it)"),
        ("entre/?min=10", 400, "WrongParameter", "missing parameter 'max' (query 'entre' needs it)"),
        (
            "entre/?min=dix&max=20",
            400,
            "WrongParameter",
            "invalid value for parameter 'min': expected a number, got 'dix'",
        ),
        (
            "par-type/?type=stade&colour=red",
            400,
            "WrongParameter",
            "unknown parameter 'colour'; query 'par-type' accepts: type, q, id, limit, page_limit",
        ),
        ("par-type/?type=stade&limit=0", 400, "WrongParameter", "invalid value for parameter 'limit'"),
        ("nope/", 404, "NotFound", "no query named 'nope'; this instance's queries: aucune, cassee, contient"),
        (
            "cassee/",
            200,
            "APIError",
            "query 'cassee' uses 'surface', 'hauteur', which the data does not have; "
            "its keys are: id, text, nom, code_postal, type, places",
        ),
    ],
)
async def test_errors(hub_client, queries, url, status, err_class, message):
    payload = await get_json(hub_client, f"/csvdatasource/test/query/{url}", status=status)
    assert payload["err"] == 1
    assert payload["err_class"] == f"passerelle.envelope.{err_class}"
    assert payload["err_desc"].startswith(message), payload["err_desc"]


async def test_check_status_reports_a_query_on_a_missing_column(queries):
    with pytest.raises(Exception, match="query 'cassee' uses 'surface'"):
        await queries.check_status()
