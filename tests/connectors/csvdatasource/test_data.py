"""The data/ endpoint: w.c.s.'s data-source contract (sorted, q=, id=, limits)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from passerelle.testing import check_conformance
from tests.connectors.csvdatasource.conftest import SORTED_IDS, get_json, ids

DEMO_FILE = Path(__file__).parents[3] / "demo" / "data" / "equipements.csv"


async def test_items_are_sorted_by_text_ignoring_case_and_accents(hub_client, make_csv):
    await make_csv()
    payload = await get_json(hub_client, "/csvdatasource/test/data")
    assert payload["err"] == 0
    assert ids(payload["data"]) == SORTED_IDS
    assert [item["text"] for item in payload["data"][:3]] == [
        "Bibliothèque Saint-Éloi",
        "Ecole Ampère",
        "École Émile Zola",
    ]


async def test_items_carry_every_column(hub_client, make_csv):
    await make_csv()
    payload = await get_json(hub_client, "/csvdatasource/test/data?id=2")
    assert payload["data"] == [
        {
            "id": "2",
            "text": "École Émile Zola",
            "nom": "École Émile Zola",
            "code_postal": "05000",
            "type": "école",
            "places": "180",
        }
    ]


async def test_columns_keep_and_rename(hub_client, make_csv):
    await make_csv(columns={"cp": "code_postal", "kind": "type"})
    payload = await get_json(hub_client, "/csvdatasource/test/data?id=4")
    assert payload["data"] == [{"id": "4", "text": "gymnase des Écrins", "cp": "05000", "kind": "gymnase"}]
    await make_csv("list", columns=["type"])
    payload = await get_json(hub_client, "/csvdatasource/list/data?id=4")
    assert payload["data"] == [{"id": "4", "text": "gymnase des Écrins", "type": "gymnase"}]


async def test_text_template(hub_client, make_csv):
    await make_csv(text_column="{nom} ({code_postal})")
    payload = await get_json(hub_client, "/csvdatasource/test/data?q=zola")
    assert [item["text"] for item in payload["data"]] == ["École Émile Zola (05000)"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ecole", ["7", "2"]),
        ("ÉCOLE", ["7", "2"]),
        ("éMiLe", ["2"]),
        ("piscine bouin", ["1"]),
        ("bouin piscine", ["1"]),
        ("piscine zola", []),
        ("saint eloi", ["3"]),
        ("saint-éloi", ["3"]),
        ("batie", ["5"]),
        ("", SORTED_IDS),
    ],
)
async def test_q_matches_every_word_ignoring_case_and_accents(hub_client, make_csv, q, expected):
    await make_csv()
    payload = await get_json(hub_client, f"/csvdatasource/test/data?q={q}")
    assert ids(payload["data"]) == expected


async def test_id_is_an_exact_lookup(hub_client, make_csv):
    await make_csv()
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?id=4"))["data"]) == ["4"]
    assert (await get_json(hub_client, "/csvdatasource/test/data?id=99"))["data"] == []
    assert (await get_json(hub_client, "/csvdatasource/test/data?id="))["data"] == []
    # id= with q= answers the item only if its text matches too.
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?id=4&q=ecrins"))["data"]) == ["4"]
    assert (await get_json(hub_client, "/csvdatasource/test/data?id=4&q=piscine"))["data"] == []


async def test_limit_and_page_limit_are_synonyms(hub_client, make_csv):
    await make_csv()
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?limit=2"))["data"]) == ["3", "7"]
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?page_limit=3"))["data"]) == ["3", "7", "2"]
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?limit=5&page_limit=1"))["data"]) == ["3"]
    assert ids((await get_json(hub_client, "/csvdatasource/test/data?q=piscine&limit=1"))["data"]) == ["5"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "'limit'"),
        ("limit=abc", "'limit'"),
        ("page_limit=-3", "'page_limit'"),
        ("colour=red", "'colour'"),
    ],
)
async def test_bad_parameters_are_400_naming_them(hub_client, make_csv, query, named):
    await make_csv()
    payload = await get_json(hub_client, f"/csvdatasource/test/data?{query}", status=400)
    assert payload["err_class"] == "passerelle.envelope.WrongParameter"
    assert named in payload["err_desc"]


async def test_rows_without_id_are_skipped_and_logged(hub_client, make_csv):
    with capture_logs() as logs:
        await make_csv()
        payload = await get_json(hub_client, "/csvdatasource/test/data?q=identifiant")
    assert payload["data"] == []
    warnings = [entry for entry in logs if entry["event"] == "rows without an id were skipped"]
    assert warnings == [
        {
            "event": "rows without an id were skipped",
            "log_level": "warning",
            "instance": "csvdatasource/test",
            "count": 1,
            "id_column": "id",
        }
    ]


async def test_missing_column_is_a_clear_error(hub_client, make_csv):
    await make_csv(id_column="code")
    payload = await get_json(hub_client, "/csvdatasource/test/data")
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.APIError"
    assert payload["err_desc"].endswith(
        "column 'code' (from id_column) is not in the file; its columns are: id, nom, code_postal, type, places"
    )
    await make_csv("tpl", text_column="{nom} {ville}")
    payload = await get_json(hub_client, "/csvdatasource/tpl/data")
    assert "column 'ville' (from text_column) is not in the file" in payload["err_desc"]


async def test_conformance(hub_client, make_csv):
    connector = await make_csv(queries={"par-type": {"filters": [{"column": "type", "parameter": "type"}]}})
    assert await check_conformance(hub_client, connector) == []


async def test_demo_file_with_the_recommended_configuration(hub_client, make_instance):
    config = {
        "source": str(DEMO_FILE),
        "id_column": "id",
        "text_column": "nom",
        "queries": {
            "par-type": {
                "description": "Équipements d'un type donné",
                "filters": [{"column": "type", "op": "eq", "parameter": "type"}],
            },
            "types": {
                "description": "Types d'équipements",
                "distinct": "type",
                "order": ["type"],
                "projection": {"id": "type", "text": "type"},
            },
        },
    }
    await make_instance("csvdatasource", "equipements", config=config)
    data = (await get_json(hub_client, "/csvdatasource/equipements/data"))["data"]
    assert 30 <= len(data) <= 60
    assert len({item["id"] for item in data}) == len(data)
    pools = (await get_json(hub_client, "/csvdatasource/equipements/query/par-type/?type=piscine"))["data"]
    assert [item["text"] for item in pools] == ["Centre aquatique", "Piscine d'été de Fontreyne"]
    schools = (await get_json(hub_client, "/csvdatasource/equipements/query/par-type/?type=ecole"))["data"]
    assert {item["type"] for item in schools} == {"école"}
    assert len(schools) == 8
    types = (await get_json(hub_client, "/csvdatasource/equipements/query/types/"))["data"]
    assert {"id": "école", "text": "école"} in types
    assert len(types) == len({item["type"] for item in data})
