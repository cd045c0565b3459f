"""The GIS layer endpoints (layers, features, query/<name>/, sector, nearest) on an opengis instance
over GeoJSON files, and named queries kept on the hub (fetch, save, reload, refresh, failure)."""

from __future__ import annotations

import json
import os

import pytest

from connectors.sig.opengis import OpenGIS
from tests.connectors.sig.baseadresse.conftest import SAMPLE, get_json, wait_ready

URL = "/opengis/sig"


def square(west, south, east, north):
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


SECTORS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "S1",
            "geometry": square(6.05, 44.49, 6.14, 44.53),
            "properties": {"code": "JAR", "nom": "Jarjayes", "jour": "lundi"},
        },
        {
            "type": "Feature",
            "id": "S2",
            "geometry": square(6.14, 44.45, 6.20, 44.49),
            "properties": {"code": "REM", "nom": "Remollon", "jour": "jeudi"},
        },
    ],
}
CONTAINERS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": f"C{n}",
            "geometry": {"type": "Point", "coordinates": [lon, 44.468]},
            "properties": {"n": n},
        }
        for n, lon in enumerate((6.170, 6.175, 6.190), start=1)
    ],
}
QUERIES = {
    "secteurs": {"layer": "secteurs", "id_template": "{code}", "text_template": "{nom} (collecte le {jour})"},
    "conteneurs": {"layer": "conteneurs", "text_template": "Conteneur {n}"},
}


@pytest.fixture
def layers_dir(tmp_path):
    directory = tmp_path / "gis"
    directory.mkdir()
    (directory / "secteurs.geojson").write_text(json.dumps(SECTORS), encoding="utf-8")
    (directory / "conteneurs.geojson").write_text(json.dumps(CONTAINERS), encoding="utf-8")
    return directory


@pytest.fixture
async def gis(make_instance, layers_dir):
    geocoder = await make_instance("base-adresse", "ville", config={"sources": [str(SAMPLE)], "backends": ["local"]})
    await wait_ready(geocoder)
    config = {
        "protocol": "geojson",
        "service_url": str(layers_dir),
        "queries": QUERIES,
        "geocoder": "base-adresse/ville",
    }
    connector = await make_instance("opengis", "sig", config=config)
    assert isinstance(connector, OpenGIS)
    return connector


async def test_layers(gis, hub_client):
    layers = (await get_json(hub_client, f"{URL}/layers"))["data"]
    assert {layer["id"] for layer in layers} == {"secteurs", "conteneurs"}
    sectors = next(layer for layer in layers if layer["id"] == "secteurs")
    assert sectors["geometry_type"] == "Polygon" and sectors["fields"] == ["code", "jour", "nom"]


async def test_features_from_the_server(gis, hub_client):
    collection = await get_json(hub_client, f"{URL}/features", layer="secteurs")
    assert collection["type"] == "FeatureCollection" and [f["id"] for f in collection["features"]] == ["S1", "S2"]
    by_point = await get_json(hub_client, f"{URL}/features", layer="secteurs", lat="44.47", lon="6.17")
    assert [f["id"] for f in by_point["features"]] == ["S2"]
    by_box = await get_json(hub_client, f"{URL}/features", layer="conteneurs", bbox="6.16,44.46,6.18,44.47")
    assert [f["id"] for f in by_box["features"]] == ["C1", "C2"]
    # The same box in Lambert-93.
    from connectors.sig.coordinates import wgs84_to_lambert93

    west, south = wgs84_to_lambert93(6.16, 44.46)
    east, north = wgs84_to_lambert93(6.18, 44.47)
    l93 = await get_json(
        hub_client, f"{URL}/features", layer="conteneurs", bbox=f"{west},{south},{east},{north}", bbox_crs="2154"
    )
    assert [f["id"] for f in l93["features"]] == ["C1", "C2"]
    by_attribute = await get_json(hub_client, f"{URL}/features", layer="secteurs", jour="jeudi")
    assert [f["id"] for f in by_attribute["features"]] == ["S2"]
    items = await get_json(
        hub_client,
        f"{URL}/features",
        layer="secteurs",
        output="datasource",
        id_template="{code}",
        text_template="{nom}",
    )
    assert [(i["id"], i["text"]) for i in items["data"]] == [("JAR", "Jarjayes"), ("REM", "Remollon")]
    kept = await get_json(hub_client, f"{URL}/features", layer="secteurs", properties="nom", limit="1")
    assert [f["properties"] for f in kept["features"]] == [{"nom": "Jarjayes"}]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layer": "secteurs", "bbox": "1,2,3"}, "four numbers"),
        ({"layer": "secteurs", "bbox": "6.2,44.4,6.1,44.5"}, "west < east"),
        ({"layer": "secteurs", "bbox": "44.4,6.1,44.5,6.2,"}, "four numbers"),
        ({"layer": "secteurs", "bbox": "600000,6000000,700000,6100000"}, "lon/lat order"),
        ({"layer": "secteurs", "bbox": "6.1,44.4,6.2,44.5", "bbox_crs": "27572"}, "bbox_crs"),
        ({"layer": "secteurs", "lat": "44.4"}, "both 'lat' and 'lon'"),
        ({"layer": "secteurs", "x": "2.3", "y": "48.8"}, "outside Lambert-93"),
        ({"layer": "secteurs", "output": "kml"}, "output"),
        ({"layer": "secteurs", "output": "datasource", "text_template": "{nom"}, "malformed"),
        ({}, "missing parameter 'layer'"),
    ],
)
async def test_features_refuse_bad_input_clearly(gis, hub_client, params, message):
    payload = await get_json(hub_client, f"{URL}/features", status=400, **params)
    assert message in payload["err_desc"]


async def test_an_unknown_layer(gis, hub_client):
    payload = await get_json(hub_client, f"{URL}/features", status=404, layer="routes")
    assert "no layer 'routes'" in payload["err_desc"]


async def test_named_query(gis, hub_client):
    collection = await get_json(hub_client, f"{URL}/query/secteurs/")
    assert [f["id"] for f in collection["features"]] == ["S1", "S2"]
    items = (await get_json(hub_client, f"{URL}/query/secteurs/", output="datasource"))["data"]
    assert [(i["id"], i["text"]) for i in items] == [
        ("JAR", "Jarjayes (collecte le lundi)"),
        ("REM", "Remollon (collecte le jeudi)"),
    ]
    assert "geometry" not in items[0]  # a select list does not need polygons
    with_geometry = await get_json(hub_client, f"{URL}/query/secteurs/", output="datasource", geometry="true")
    assert with_geometry["data"][0]["geometry"]["type"] == "Polygon"
    assert [
        i["id"] for i in (await get_json(hub_client, f"{URL}/query/secteurs/", output="datasource", q="jeudi"))["data"]
    ] == ["REM"]
    assert [
        i["id"] for i in (await get_json(hub_client, f"{URL}/query/secteurs/", output="datasource", id="JAR"))["data"]
    ] == ["JAR"]
    inside = await get_json(hub_client, f"{URL}/query/secteurs/", lat="44.51", lon="6.10")
    assert [f["id"] for f in inside["features"]] == ["S1"]
    missing = await get_json(hub_client, f"{URL}/query/nope/", status=404)
    assert "queries: conteneurs, secteurs" in missing["err_desc"]


async def test_sector_of_an_address_and_of_a_point(gis, hub_client):
    found = await get_json(hub_client, f"{URL}/sector", query="secteurs", address="3 chemin des cerisiers remollon")
    assert [i["id"] for i in found["data"]] == ["REM"]
    assert found["point"]["address"] == "3 Chemin des Cerisiers 05190 Remollon"
    assert found["point"]["lat"] == pytest.approx(44.468574)
    assert "geometry" not in found["data"][0]
    drawn = await get_json(hub_client, f"{URL}/sector", query="secteurs", lat="44.51", lon="6.10", geometry="1")
    assert drawn["data"][0]["geometry"]["type"] == "Polygon"
    by_point = await get_json(hub_client, f"{URL}/sector", query="secteurs", lat="44.51", lon="6.10")
    assert [i["text"] for i in by_point["data"]] == ["Jarjayes (collecte le lundi)"]
    assert (await get_json(hub_client, f"{URL}/sector", query="secteurs", lat="45.0", lon="6.10"))["data"] == []
    unknown = await get_json(hub_client, f"{URL}/sector", query="secteurs", address="zzz qqq xxxx")
    assert unknown["err"] == 1 and "address not found" in unknown["err_desc"]
    both = await get_json(hub_client, f"{URL}/sector", status=400, query="secteurs", address="x", lat="1", lon="1")
    assert "not both" in both["err_desc"]
    neither = await get_json(hub_client, f"{URL}/sector", status=400, query="secteurs")
    assert "give 'address'" in neither["err_desc"]


async def test_nearest(gis, hub_client):
    found = (
        await get_json(hub_client, f"{URL}/nearest", query="conteneurs", lat="44.468", lon="6.171", distance="600")
    )["data"]
    assert [i["id"] for i in found] == ["C1", "C2"]
    assert found[0]["distance"] < found[1]["distance"] < 600
    assert found[0]["text"] == "Conteneur 1"
    assert (
        len(
            (
                await get_json(
                    hub_client,
                    f"{URL}/nearest",
                    query="conteneurs",
                    lat="44.468",
                    lon="6.171",
                    distance="5000",
                    limit="1",
                )
            )["data"]
        )
        == 1
    )
    error = await get_json(hub_client, f"{URL}/nearest", status=400, query="conteneurs")
    assert "give 'lat' and 'lon'" in error["err_desc"]


async def test_named_queries_are_saved_refreshed_and_kept_on_failure(gis, layers_dir, hub_settings):
    first = await gis.named.get("secteurs")
    assert len(first.items) == 2
    # Another process (or a restart) reads the saved copy: no fetch needed.
    (layers_dir / "secteurs.geojson").rename(layers_dir / "moved.geojson")
    again = OpenGIS(gis.instance, gis.config, hub_settings)
    loaded = await again.named.get("secteurs")
    assert [i["id"] for i in loaded.items] == ["JAR", "REM"]
    # A refresh that fails keeps what was loaded and says why.
    assert not await gis.named.refresh("secteurs")
    status = gis.status_details()["queries"]["secteurs"]
    assert status["features"] == 2 and "no layer 'secteurs'" in status["last_error"]
    # The layer changes on the server: the next refresh replaces the features.
    changed = {**SECTORS, "features": SECTORS["features"][:1]}
    (layers_dir / "secteurs.geojson").write_text(json.dumps(changed), encoding="utf-8")
    assert await gis.named.refresh("secteurs")
    assert [i["id"] for i in (await gis.named.get("secteurs")).items] == ["JAR"]
    # The other process sees the new file within check_interval.
    again.named._checked_at.clear()
    assert [i["id"] for i in (await again.named.get("secteurs")).items] == ["JAR"]
    await again.close()


async def test_the_periodic_job_refreshes_only_old_queries(gis, layers_dir):
    await gis.named.get("secteurs")
    changed = {**SECTORS, "features": SECTORS["features"][1:]}
    (layers_dir / "secteurs.geojson").write_text(json.dumps(changed), encoding="utf-8")
    await gis.refresh_queries()
    assert len((await gis.named.get("secteurs")).items) == 2  # fetched less than refresh_interval ago
    gis.named._fetched_at["secteurs"] -= 4000
    await gis.refresh_queries()
    assert [i["id"] for i in (await gis.named.get("secteurs")).items] == ["REM"]


async def test_a_query_that_cannot_be_fetched_answers_503(make_instance, hub_client, tmp_path):
    config = {"protocol": "geojson", "service_url": str(tmp_path), "queries": {"secteurs": {"layer": "absent"}}}
    await make_instance("opengis", "sig", config=config)
    payload = await get_json(hub_client, f"{URL}/query/secteurs/", status=503)
    assert "could not be fetched" in payload["err_desc"] and "no layer 'absent'" in payload["err_desc"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"protocol": "geojson", "service_url": "https://example.org/x"}, "give a path"),
        ({"protocol": "wfs", "service_url": "/srv/gis"}, "needs an http"),
        ({"protocol": "wfs", "service_url": "https://x", "queries": {"a/b": {"layer": "l"}}}, "query name"),
        (
            {"protocol": "wfs", "service_url": "https://x", "queries": {"q": {"layer": "l", "text_template": "{x"}}},
            "malformed",
        ),
        ({"protocol": "wfs", "service_url": "https://x", "geocoder": "nothing"}, "geocoder"),
    ],
)
def test_configuration_errors(config, message):
    with pytest.raises(ValueError, match=message):
        OpenGIS.Config.model_validate(config)


def test_saved_file_is_written_atomically(tmp_path):
    from connectors.sig.layers.features import feature_from_geojson
    from connectors.sig.layers.namedqueries import _read, _save

    features = [feature_from_geojson(f) for f in SECTORS["features"]]
    path = tmp_path / "queries" / "s.geojson"
    _save(path, features, "2026-11-29T00:00:00+00:00")
    assert os.listdir(path.parent) == ["s.geojson"]
    read, fetched = _read(path)
    assert [f.id for f in read] == ["S1", "S2"] and fetched.startswith("2026-11-29")


async def test_conformance(gis, hub_client):
    from passerelle.testing import check_conformance

    assert await check_conformance(hub_client, gis) == []


async def test_a_process_that_never_fetched_trusts_a_fresh_saved_copy(gis, layers_dir, hub_settings):
    await gis.named.get("secteurs")
    changed = {**SECTORS, "features": SECTORS["features"][1:]}
    (layers_dir / "secteurs.geojson").write_text(json.dumps(changed), encoding="utf-8")
    # Another process runs the periodic job: the copy saved a moment ago is fresh, no fetch.
    other = OpenGIS(gis.instance, gis.config, hub_settings)
    assert not await other.named.refresh("secteurs", force=False)
    assert len((await other.named.get("secteurs")).items) == 2
    await other.close()
