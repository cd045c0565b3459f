"""Features read from GeoJSON (passerelle's GIS layers): validation, repair, output shapes."""

from __future__ import annotations

import pytest
import shapely

from connectors.sig.layers.features import FeatureError, feature_from_geojson, to_feature_collection
from passerelle.text import TextTemplate

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[6.07, 44.55], [6.09, 44.55], [6.09, 44.57], [6.07, 44.57], [6.07, 44.55]]],
}


def test_a_feature_round_trips_as_geojson():
    feature = feature_from_geojson(
        {"type": "Feature", "id": 12, "geometry": SQUARE, "properties": {"secteur": "A", "jour": "lundi"}}
    )
    assert feature.id == "12"
    out = feature.geojson()
    assert out["id"] == "12" and out["properties"] == {"secteur": "A", "jour": "lundi"}
    assert shapely.geometry.shape(out["geometry"]).equals(shapely.geometry.shape(SQUARE))
    collection = to_feature_collection([feature], numberMatched=1)
    assert collection["type"] == "FeatureCollection" and collection["numberMatched"] == 1


def test_data_source_items_use_templates():
    feature = feature_from_geojson(
        {"type": "Feature", "id": "f1", "geometry": SQUARE, "properties": {"code": 5.0, "nom": "Centre"}}
    )
    item = feature.item(TextTemplate.parse("{code}"), TextTemplate.parse("Secteur {nom} ({code})"))
    assert item["id"] == "5"
    assert item["text"] == "Secteur Centre (5)"
    assert item["nom"] == "Centre" and "geometry" not in item
    assert feature.geometry_json()["type"] == "Polygon"
    # Without an id template, the feature's id; an empty text falls back on the id.
    assert feature.item(None, TextTemplate.parse("{absent}"))["text"] == "f1"


def test_self_intersecting_polygons_are_repaired():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    feature = feature_from_geojson({"type": "Feature", "id": "b", "geometry": bowtie, "properties": {}})
    assert feature.geometry.is_valid
    assert feature.geometry.area == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "FeatureCollection"}, "not a GeoJSON Feature"),
        ({"type": "Feature", "id": "x", "properties": {}}, "no geometry"),
        ({"type": "Feature", "id": "x", "geometry": {"type": "Point", "coordinates": []}}, "empty"),
        ({"type": "Feature", "id": "x", "geometry": {"type": "Blob", "coordinates": [1, 2]}}, "cannot be read"),
        # Lambert-93 coordinates where WGS84 was expected: the server ignored the CRS asked for.
        ({"type": "Feature", "id": "x", "geometry": {"type": "Point", "coordinates": [651500, 6865844]}}, "WGS84"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3, 48.8]}, "properties": {}}, "no id"),
        (
            {
                "type": "Feature",
                "id": "x",
                "geometry": {"type": "Point", "coordinates": [2.3, 48.8]},
                "properties": [1],
            },
            "properties",
        ),
    ],
)
def test_unusable_features_are_refused_clearly(data, message):
    with pytest.raises(FeatureError, match=message):
        feature_from_geojson(data)


def test_a_fallback_id():
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3, 48.8]}, "properties": {}}
    assert feature_from_geojson(point, fallback_id="layer.7").id == "layer.7"
