"""The opengis connector through the hub against the real servers of scripts/with-gis.sh:
MapServer 8 over WFS 2.0.0 and 1.1.0, pygeoapi over OGC API - Features. A named query of the
collection sectors of Gap is fetched from each, and sector/nearest/query answer from the hub's copy
what the files of demo/data/gis/ say."""

from __future__ import annotations

import os

import pytest

from tests.connectors.sig.baseadresse.conftest import get_json

WFS_URL = os.environ.get("PASSERELLE_TEST_WFS_URL", "")
OGCAPI_URL = os.environ.get("PASSERELLE_TEST_OGCAPI_URL", "")
GAP_CENTRE = {"lat": "44.5594", "lon": "6.0786"}  # place Jean Marcellin

SERVERS = {
    "wfs-2.0.0": (
        WFS_URL,
        {"protocol": "wfs", "wfs_version": "2.0.0", "id_property": "secteur"},
        "secteurs_collecte",
    ),
    "wfs-1.1.0": (
        WFS_URL,
        {"protocol": "wfs", "wfs_version": "1.1.0", "id_property": "secteur"},
        "secteurs_collecte",
    ),
    "ogcapi": (OGCAPI_URL, {"protocol": "ogcapi"}, "secteurs_collecte"),
}

pytestmark = pytest.mark.peers


@pytest.fixture(params=sorted(SERVERS))
async def gis(request, make_instance):
    url, config, layer = SERVERS[request.param]
    if not url:
        pytest.skip("no GIS peer (make test starts them: scripts/with-gis.sh)")
    queries = {
        "secteurs": {"layer": layer, "id_template": "{secteur}", "text_template": "{nom} ({jour_collecte})"},
        "communes": {
            "layer": layer.replace("secteurs_collecte", "communes"),
            "id_template": "{insee}",
            "text_template": "{nom}",
        },
    }
    return await make_instance("opengis", "gap", config={"service_url": url, "queries": queries, **config})


async def test_sector_from_the_named_query(gis, hub_client):
    found = await get_json(hub_client, "/opengis/gap/sector", query="secteurs", **GAP_CENTRE)
    assert [item["id"] for item in found["data"]] == ["GAP-1"]
    assert found["data"][0]["text"] == "Centre-ville (lundi et jeudi)"
    commune = await get_json(hub_client, "/opengis/gap/sector", query="communes", **GAP_CENTRE)
    assert [item["id"] for item in commune["data"]] == ["05061"]
    # Every commune came, across the servers' pages of 50.
    assert gis.status_details()["queries"]["communes"]["features"] == 161


async def test_query_and_nearest(gis, hub_client):
    sectors = (await get_json(hub_client, "/opengis/gap/query/secteurs/", output="datasource"))["data"]
    assert sorted(item["id"] for item in sectors) == [f"GAP-{n}" for n in range(1, 7)]
    near = (await get_json(hub_client, "/opengis/gap/nearest", query="communes", distance="1", **GAP_CENTRE))["data"]
    assert [(item["id"], item["distance"]) for item in near] == [("05061", 0.0)]


async def test_features_and_layers_from_the_server(gis, hub_client):
    layers = {layer["id"] for layer in (await get_json(hub_client, "/opengis/gap/layers"))["data"]}
    # WFS lists type names with their namespace prefix (ms:…); queries take either form.
    assert {name.split(":")[-1] for name in layers} == {"communes", "communes_points", "secteurs_collecte"}
    layer = "secteurs_collecte"
    inside = await get_json(hub_client, "/opengis/gap/features", layer=layer, **GAP_CENTRE)
    assert [f["properties"]["secteur"] for f in inside["features"]] == ["GAP-1"]
    filtered = await get_json(hub_client, "/opengis/gap/features", layer=layer, jour_collecte="mercredi")
    assert filtered["features"] and all(f["properties"]["jour_collecte"] == "mercredi" for f in filtered["features"])
