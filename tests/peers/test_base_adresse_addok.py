"""The base-adresse connector's remote backend against a real addok 1.3.2 (the BAN's engine),
started by ``make test`` (scripts/with-addok.sh) on the BAN sample; skipped without it."""

from __future__ import annotations

import os

import pytest

from tests.connectors.sig.baseadresse.conftest import get_json

ADDOK_URL = os.environ.get("PASSERELLE_TEST_ADDOK_URL")
URL = "/base-adresse/addok"

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not ADDOK_URL, reason="no addok (make test starts one: scripts/with-addok.sh)"),
]


@pytest.fixture
async def addok_instance(make_instance):
    config = {"sources": [], "backends": ["remote"], "service_url": ADDOK_URL}
    return await make_instance("base-adresse", "addok", config=config)


async def test_search_in_nominatim_dialect(addok_instance, hub_client):
    results = await get_json(hub_client, f"{URL}/search", q="51 rue de rivoli paris", format="json")
    first = results[0]
    assert first["display_name"] == "51 Rue de Rivoli 75001 Paris"
    assert first["address"]["house_number"] == "51"
    assert first["address"]["road"] == "Rue de Rivoli"
    assert first["address"]["citycode"] == "75101"
    assert first["id"] == "75101_8249_00051"
    assert (first["lat"], first["lon"]) == ("48.858899", "2.34666")


async def test_autocompletion_and_ids(addok_instance, hub_client):
    data = (await get_json(hub_client, f"{URL}/addresses", q="3 chemin des ceris"))["data"]
    assert data[0]["text"] == "3 Chemin des Cerisiers 05190 Remollon"
    again = (await get_json(hub_client, f"{URL}/addresses", id=data[0]["id"]))["data"]
    assert again[0]["text"] == data[0]["text"]


async def test_filters(addok_instance, hub_client):
    results = await get_json(hub_client, f"{URL}/search", q="route", citycode="05068", limit=5)
    assert results and {r["address"]["citycode"] for r in results} == {"05068"}


async def test_reverse(addok_instance, hub_client):
    found = await get_json(hub_client, f"{URL}/reverse", lat="48.8589", lon="2.34667", format="json")
    assert found["address"]["road"] == "Rue de Rivoli"
    assert found["address"]["postcode"] == "75001"
