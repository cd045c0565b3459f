"""The arcgis connector type through the hub, against the ArcGIS REST simulator: layers, features,
a named query with the sector and nearest lookups, a token kept secret, errors."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from simulators.arcgis.app import make_app
from tests.connectors.sig.baseadresse.conftest import get_json

URL = "/arcgis/agglo"
TOKEN = "s3cr3t-arcgis-token"
QUERIES = {
    "quartiers": {"layer": "Quartiers", "id_template": "{CODE_QUARTIER}", "text_template": "{NOM}"},
    "equipements": {"layer": "1", "text_template": "{NOM}"},
}


@pytest.fixture
async def arcgis_server():
    server = TestServer(make_app(token=TOKEN), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def agglo(make_instance, arcgis_server):
    config = {
        "service_url": str(arcgis_server.make_url("/arcgis/rest/services/Urbanisme/FeatureServer")),
        "token": TOKEN,
        "queries": QUERIES,
    }
    return await make_instance("arcgis", "agglo", config=config)


async def test_layers_and_features(agglo, hub_client):
    layers = (await get_json(hub_client, f"{URL}/layers"))["data"]
    assert [(layer["id"], layer["text"]) for layer in layers][:2] == [("0", "Quartiers"), ("1", "Equipements")]
    quartiers = next(layer for layer in layers if layer["id"] == "0")
    assert quartiers["geometry_type"] == "Polygon" and "NOM" in quartiers["fields"]
    west, south, east, north = quartiers["bbox"]
    assert 6.0 < west < east < 6.2 and 44.5 < south < north < 44.6  # Lambert-93 extent, answered in WGS84
    inside = await get_json(hub_client, f"{URL}/features", layer="0", lat="44.559", lon="6.0825")
    assert [f["properties"]["CODE_QUARTIER"] for f in inside["features"]] == ["Q01"]
    assert inside["features"][0]["properties"]["DATE_MAJ"].startswith("2024-03-15")
    filtered = await get_json(
        hub_client, f"{URL}/features", layer="Quartiers", output="datasource", text_template="{NOM}", NOM="La Romette"
    )
    assert [item["text"] for item in filtered["data"]] == ["La Romette"]


async def test_sector_and_nearest_from_the_named_query(agglo, hub_client):
    found = await get_json(hub_client, f"{URL}/sector", query="quartiers", lat="44.5595", lon="6.093")
    assert [(i["id"], i["text"]) for i in found["data"]] == [("Q04", "Les Eyssagnières")]
    assert found["point"] == {"lat": 44.5595, "lon": 6.093}
    near = (
        await get_json(
            hub_client, f"{URL}/nearest", query="equipements", lat="44.559", lon="6.0825", distance="2000", limit="3"
        )
    )["data"]
    assert len(near) == 3 and near[0]["distance"] <= near[1]["distance"] <= near[2]["distance"] <= 2000
    status = agglo.status_details()["queries"]
    assert status["quartiers"]["features"] == 4 and status["quartiers"]["last_error"] is None


async def test_the_token_is_a_secret(agglo, hub_client):
    from passerelle.testing import ADMIN_TOKEN

    response = await hub_client.get(
        "/manage/api/instances/arcgis/agglo/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    body = await response.text()
    assert TOKEN not in body
    assert "token" in (await response.json())["data"]["secrets_set"]


async def test_a_wrong_token_is_a_clear_error(make_instance, hub_client, arcgis_server):
    config = {
        "service_url": str(arcgis_server.make_url("/arcgis/rest/services/Urbanisme/FeatureServer")),
        "token": "wrong",
    }
    await make_instance("arcgis", "agglo", config=config)
    payload = await get_json(hub_client, f"{URL}/features", status=502, layer="0")
    assert "token" in payload["err_desc"].lower()
    assert "wrong" not in payload["err_desc"]


@pytest.mark.parametrize(
    "url",
    ["https://sig.example.org/arcgis/rest/services/Urbanisme", "ftp://x/FeatureServer", "https://x/FeatureServer/0"],
)
def test_service_urls_are_checked(url):
    from connectors.sig.arcgis import ArcGIS

    with pytest.raises(ValueError, match="FeatureServer or /MapServer"):
        ArcGIS.Config.model_validate({"service_url": url})


async def test_conformance(agglo, hub_client):
    from passerelle.testing import check_conformance

    assert await check_conformance(hub_client, agglo) == []
