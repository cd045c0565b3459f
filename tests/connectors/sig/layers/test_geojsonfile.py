"""The GeoJSON-file provider: layers of a directory, queries applied locally like remote providers."""

from __future__ import annotations

import json

import pytest

from connectors.sig.layers.geojsonfile import GeoJSONFiles
from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from passerelle import NotFound, UpstreamError


def square(west, south, east, north):
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


@pytest.fixture
def service(tmp_path):
    sectors = {
        "type": "FeatureCollection",
        "name": "Secteurs de collecte",
        "features": [
            {
                "type": "Feature",
                "id": "A",
                "geometry": square(6.06, 44.54, 6.08, 44.56),
                "properties": {"jour": "lundi", "n": 1},
            },
            {
                "type": "Feature",
                "id": "B",
                "geometry": square(6.08, 44.54, 6.10, 44.56),
                "properties": {"jour": "jeudi", "n": 2.0},
            },
        ],
    }
    points = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [6.11, 44.55]}, "properties": {}}
        ],
    }
    (tmp_path / "secteurs.geojson").write_text(json.dumps(sectors), encoding="utf-8")
    (tmp_path / "points.geojson").write_text(json.dumps(points), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a layer", encoding="utf-8")
    return GeoJSONFiles(tmp_path)


async def test_layers(service):
    layers = {layer.name: layer for layer in await service.layers()}
    assert set(layers) == {"secteurs", "points"}
    assert layers["secteurs"].title == "Secteurs de collecte"
    assert layers["secteurs"].geometry_type == "Polygon"
    assert layers["secteurs"].fields == ("jour", "n")


async def test_queries(service):
    everything = await service.features(LayerQuery("secteurs"))
    assert [f.id for f in everything.features] == ["A", "B"] and everything.number_matched == 2
    assert [f.id for f in (await service.features(LayerQuery("secteurs", point=(6.09, 44.55)))).features] == ["B"]
    assert [f.id for f in (await service.features(LayerQuery("secteurs", bbox=(6.0, 44.5, 6.07, 44.6)))).features] == [
        "A"
    ]
    # Filters compare as text: 2.0 is "2".
    assert [f.id for f in (await service.features(LayerQuery("secteurs", filters={"n": "2"}))).features] == ["B"]
    kept = (await service.features(LayerQuery("secteurs", properties=("jour",), limit=1))).features
    assert [(f.id, f.properties) for f in kept] == [("A", {"jour": "lundi"})]
    # A feature without an id gets one from its layer and position.
    assert [f.id for f in (await service.features(LayerQuery("points"))).features] == ["points.1"]


async def test_errors(service, tmp_path):
    with pytest.raises(NotFound, match=r"no layer 'roads'.*layers: points, secteurs"):
        await service.features(LayerQuery("roads"))
    with pytest.raises(TooManyFeatures, match="more than 1"):
        await GeoJSONFiles(tmp_path, max_features=1).features(LayerQuery("secteurs"))
    (tmp_path / "broken.geojson").write_text("{", encoding="utf-8")
    with pytest.raises(UpstreamError, match=r"broken\.geojson cannot be read"):
        await service.features(LayerQuery("broken"))
    with pytest.raises(UpstreamError, match="no such file"):
        await GeoJSONFiles(tmp_path / "missing").layers()


async def test_ids_from_a_property(tmp_path):
    layer = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [6.08, 44.56]},
                "properties": {"insee": "05061"},
            },
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [6.1, 44.5]}, "properties": {}},
        ],
    }
    (tmp_path / "mairies.geojson").write_text(json.dumps(layer), encoding="utf-8")
    found = await GeoJSONFiles(tmp_path, id_property="insee").features(LayerQuery("mairies"))
    assert [f.id for f in found.features] == ["05061", "mairies.2"]
