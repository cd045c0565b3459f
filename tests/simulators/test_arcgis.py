"""The ArcGIS REST simulator speaks the wire format of protocols.md §4.3 (FeatureServer / MapServer `query`)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import shapely
from aiohttp.test_utils import TestClient, TestServer
from pyproj import Transformer
from shapely.geometry import Polygon

from simulators.arcgis import Layer, Service, load_services, make_app, points_layer

ROOT = Path(__file__).parent.parent.parent
BASE = "/arcgis/rest/services"
QUARTIERS = f"{BASE}/Urbanisme/FeatureServer/0"
EQUIPEMENTS = f"{BASE}/Urbanisme/FeatureServer/1"
TRONCONS = f"{BASE}/Voirie/MapServer/0"
PAV = f"{BASE}/Voirie/MapServer/1"
WGS_TO_L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
WGS_TO_WM = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
# Inside the Centre-ville polygon, outside its hole (the park).
IN_CENTRE = (6.0820, 44.5620)
IN_PARK = (6.0775, 44.5590)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


async def started(app: Any) -> TestClient:
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    client = await started(make_app())
    yield client
    await client.close()


async def get(client: TestClient, path: str, **params: str) -> Any:
    response = await client.get(path, params={"f": "json", **params})
    # Every answer of the REST API, errors included, is HTTP 200.
    assert response.status == 200
    return json.loads(await response.text())


async def query(client: TestClient, layer: str, **params: str) -> Any:
    return await get(client, f"{layer}/query", **params)


async def oids(client: TestClient, layer: str, where: str, **params: str) -> list[int]:
    body = await query(client, layer, where=where, **params)
    assert "error" not in body, body
    return [feature["attributes"]["OBJECTID"] for feature in body["features"]]


def unable(detail: str) -> dict[str, Any]:
    return {"error": {"code": 400, "message": "Unable to complete operation.", "details": [detail]}}


# -- metadata -----------------------------------------------------------------------------------------------------


async def test_services_directory(client: TestClient) -> None:
    body = await get(client, BASE)
    assert body == {
        "currentVersion": 11.1,
        "folders": [],
        "services": [{"name": "Urbanisme", "type": "FeatureServer"}, {"name": "Voirie", "type": "MapServer"}],
    }
    assert await get(client, BASE + "/") == body


async def test_feature_server_info(client: TestClient) -> None:
    body = await get(client, f"{BASE}/Urbanisme/FeatureServer")
    assert body["spatialReference"] == {"wkid": 2154, "latestWkid": 2154}
    assert body["capabilities"] == "Query"
    assert [(layer["id"], layer["name"], layer["geometryType"]) for layer in body["layers"]] == [
        (0, "Quartiers", "esriGeometryPolygon"),
        (1, "Equipements", "esriGeometryPoint"),
    ]
    assert body["tables"] == []
    assert body["fullExtent"]["spatialReference"] == {"wkid": 2154, "latestWkid": 2154}


async def test_map_server_reports_web_mercator_as_102100(client: TestClient) -> None:
    body = await get(client, f"{BASE}/Voirie/MapServer")
    assert body["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    assert "Query" in body["capabilities"].split(",")
    assert [layer["name"] for layer in body["layers"]] == ["Troncons", "Points d'apport volontaire"]


async def test_layer_metadata(client: TestClient) -> None:
    body = await get(client, QUARTIERS)
    assert body["id"] == 0 and body["name"] == "Quartiers" and body["type"] == "Feature Layer"
    assert body["geometryType"] == "esriGeometryPolygon"
    assert body["objectIdField"] == "OBJECTID"
    assert body["maxRecordCount"] == 2000
    assert body["capabilities"] == "Query"
    assert body["advancedQueryCapabilities"]["supportsPagination"] is True
    assert body["advancedQueryCapabilities"]["supportsOrderBy"] is True
    fields = {field["name"]: field for field in body["fields"]}
    assert list(fields) == ["OBJECTID", "NOM", "CODE_QUARTIER", "CODE_INSEE", "POPULATION", "SURFACE_HA", "DATE_MAJ"]
    assert fields["OBJECTID"]["type"] == "esriFieldTypeOID" and "length" not in fields["OBJECTID"]
    assert fields["NOM"] == {**fields["NOM"], "type": "esriFieldTypeString", "alias": "Nom du quartier", "length": 80}
    assert fields["POPULATION"]["type"] == "esriFieldTypeInteger"
    assert fields["SURFACE_HA"]["type"] == "esriFieldTypeDouble"
    assert fields["DATE_MAJ"]["type"] == "esriFieldTypeDate"
    extent = body["extent"]
    assert extent["spatialReference"] == {"wkid": 2154, "latestWkid": 2154}
    # Lambert-93 metres around Gap: the stored coordinates are projected.
    assert 940_000 < extent["xmin"] < extent["xmax"] < 950_000
    assert 6_380_000 < extent["ymin"] < extent["ymax"] < 6_400_000


async def test_layer_without_pagination_says_so(client: TestClient) -> None:
    body = await get(client, PAV)
    assert body["advancedQueryCapabilities"]["supportsPagination"] is False
    assert body["maxRecordCount"] == 5
    assert body["objectIdField"] == "FID"


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/Nope/FeatureServer",
        f"{BASE}/Urbanisme/MapServer",
        f"{BASE}/Urbanisme/FeatureServer/7",
        f"{BASE}/Urbanisme/FeatureServer/7/query",
        f"{BASE}/Urbanisme/FeatureServer/abc",
        f"{BASE}/Urbanisme/FeatureServer/0/delete",
        f"{BASE}/Urbanisme",
    ],
)
async def test_unknown_paths_are_invalid_url_with_http_200(client: TestClient, path: str) -> None:
    assert await get(client, path) == {"error": {"code": 400, "message": "Invalid URL", "details": ["Invalid URL"]}}


async def test_without_f_json_the_answer_is_html(client: TestClient) -> None:
    response = await client.get(f"{QUARTIERS}/query", params={"where": "1=1"})
    assert response.status == 200 and response.content_type == "text/html"


async def test_pjson_is_the_same_document_indented_as_text(client: TestClient) -> None:
    response = await client.get(QUARTIERS, params={"f": "pjson"})
    assert response.content_type == "text/plain"
    text = await response.text()
    assert "\n  " in text
    assert json.loads(text) == await get(client, QUARTIERS)


async def test_rest_info(client: TestClient) -> None:
    body = await get(client, "/arcgis/rest/info")
    assert body["currentVersion"] == 11.1 and body["authInfo"] == {"isTokenBasedSecurity": False}


# -- where --------------------------------------------------------------------------------------------------------

WHERE_CASES = [
    ("1=1", list(range(1, 13))),
    ("TYPE = 'ecole'", [3, 4, 9]),
    ("type = 'ecole'", [3, 4, 9]),
    ("TYPE <> 'ecole'", [1, 2, 5, 6, 7, 8, 10, 11, 12]),
    ("TYPE != 'ecole'", [1, 2, 5, 6, 7, 8, 10, 11, 12]),
    ("CAPACITE > 250", [5, 6, 12]),
    ("CAPACITE >= 250", [2, 5, 6, 12]),
    ("CAPACITE < 120", [7, 10]),
    ("CAPACITE <= 120", [4, 7, 10]),
    ("CAPACITE = 45", [7]),
    ("CAPACITE = -1", []),
    ("NOTE > 4.5", [2, 7]),
    ("ACCESSIBLE = 0", [4, 8, 10]),
    ("OBJECTID IN (1, 3, 99)", [1, 3]),
    ("TYPE IN ('piscine','creche')", [5, 7]),
    ("TYPE NOT IN ('ecole', 'gymnase', 'culture')", [1, 2, 5, 7, 10]),
    ("NOM LIKE 'École%'", [3, 4, 9]),
    ("NOM LIKE '%Fontreyne'", [4, 8]),
    ("NOM LIKE 'Gymnase d_s%'", [6]),
    ("NOM LIKE 'école%'", []),
    ("UPPER(NOM) LIKE '%PISCINE%'", [5]),
    ("lower(type) = 'mairie'", [1]),
    ("CAPACITE IS NULL", [1, 11]),
    ("CAPACITE IS NOT NULL", [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]),
    ("NOT TYPE = 'ecole'", [1, 2, 5, 6, 7, 8, 10, 11, 12]),
    # NULL is unknown, and NOT unknown is still unknown: rows without a capacity stay out.
    ("NOT CAPACITE > 100", [7, 10]),
    ("TYPE = 'ecole' AND CAPACITE > 150", [3, 9]),
    ("TYPE = 'piscine' OR TYPE = 'creche' AND CAPACITE > 100", [5]),
    ("(TYPE = 'piscine' OR TYPE = 'creche') AND CAPACITE > 40", [5, 7]),
    ("NOTE IS NULL OR CAPACITE IS NULL", [1, 8, 11]),
    ("NOM = 'Crèche l''Île aux enfants'", [7]),
    ("type = 'ecole' and capacite between 150 and 240", [3, 9]),
    ("CAPACITE NOT BETWEEN 100 AND 600", [7, 10]),
    ("DATE_OUVERTURE > DATE '2000-01-01'", [2, 7, 10]),
    ("DATE_OUVERTURE < TIMESTAMP '1970-01-01 00:00:00'", [1, 3]),
    ("DATE_OUVERTURE = '1988-06-20 09:00:00'", [5]),
    ("COMMENTAIRE LIKE '50%'", [7]),
]


@pytest.mark.parametrize(("where", "expected"), WHERE_CASES)
async def test_where(client: TestClient, where: str, expected: list[int]) -> None:
    assert await oids(client, EQUIPEMENTS, where) == expected


@pytest.mark.parametrize(
    "where",
    [
        "TYPE = 'ecole",
        "FOO = 1",
        "TYPE = 5",
        "CAPACITE = 'beaucoup'",
        "TYPE =",
        "TYPE == 'ecole'",
        "TYPE",
        "1=1; DROP TABLE equipements",
        "SOUNDEX(NOM) = 'x'",
        "TYPE LIKE 5",
        "CAPACITE LIKE '4%'",
        "(TYPE = 'ecole'",
        "TYPE = 'ecole')",
        "DATE_OUVERTURE > DATE 'hier'",
        "TYPE IS 'ecole'",
        "AND TYPE = 'ecole'",
    ],
)
async def test_invalid_where_is_an_error_body(client: TestClient, where: str) -> None:
    assert await query(client, EQUIPEMENTS, where=where) == unable("'where' parameter is invalid")


async def test_feature_server_defaults_where_but_map_server_wants_a_filter(client: TestClient) -> None:
    assert len((await query(client, QUARTIERS))["features"]) == 4
    body = await query(client, TRONCONS)
    assert body["error"]["code"] == 400 and body["error"]["message"] == "Unable to complete operation."
    assert len((await query(client, TRONCONS, where="1=1"))["features"]) == 4


# -- outFields and attributes -------------------------------------------------------------------------------------


async def test_out_fields_star_list_and_default(client: TestClient) -> None:
    body = await query(client, QUARTIERS, where="CODE_QUARTIER = 'Q02'", outFields="*")
    assert body["features"][0]["attributes"] == {
        "OBJECTID": 2,
        "NOM": "Fontreyne",
        "CODE_QUARTIER": "Q02",
        "CODE_INSEE": "05061",
        "POPULATION": 4870,
        "SURFACE_HA": 251.0,
        "DATE_MAJ": ms(2023, 11, 2, 8, 30),
    }
    assert [field["name"] for field in body["fields"]] == [
        "OBJECTID",
        "NOM",
        "CODE_QUARTIER",
        "CODE_INSEE",
        "POPULATION",
        "SURFACE_HA",
        "DATE_MAJ",
    ]
    # Names are matched whatever their case and answered in the layer's.
    body = await query(client, QUARTIERS, where="CODE_QUARTIER = 'Q02'", outFields="nom, population")
    assert body["features"][0]["attributes"] == {"NOM": "Fontreyne", "POPULATION": 4870}
    assert [field["name"] for field in body["fields"]] == ["NOM", "POPULATION"]
    # Without outFields only the object id comes back.
    body = await query(client, QUARTIERS, where="CODE_QUARTIER = 'Q02'")
    assert body["features"][0]["attributes"] == {"OBJECTID": 2}


async def test_unknown_out_field_is_an_error_body(client: TestClient) -> None:
    assert await query(client, QUARTIERS, where="1=1", outFields="NOM,FOO") == unable("Invalid field: FOO")


async def test_codes_stay_strings_and_nulls_are_null(client: TestClient) -> None:
    body = await query(client, QUARTIERS, where="NOM = 'La Romette'", outFields="CODE_INSEE,POPULATION")
    assert body["features"][0]["attributes"] == {"CODE_INSEE": "05061", "POPULATION": None}


async def test_dates_are_epoch_milliseconds(client: TestClient) -> None:
    body = await query(
        client,
        EQUIPEMENTS,
        where="OBJECTID IN (1, 2, 5, 11)",
        outFields="OBJECTID,DATE_OUVERTURE",
        orderByFields="OBJECTID",
    )
    dates = {feature["attributes"]["OBJECTID"]: feature["attributes"]["DATE_OUVERTURE"] for feature in body["features"]}
    assert dates == {1: ms(1910, 5, 1), 2: ms(2001, 9, 15), 5: ms(1988, 6, 20, 9), 11: None}
    assert dates[1] < 0 and isinstance(dates[2], int)
    quartiers = await query(client, QUARTIERS, where="CODE_QUARTIER = 'Q04'", outFields="DATE_MAJ")
    assert quartiers["features"][0]["attributes"]["DATE_MAJ"] == ms(2024, 1, 8)


# -- spatial filters ----------------------------------------------------------------------------------------------


async def names_at(client: TestClient, geometry: str, **params: str) -> list[str]:
    body = await query(client, QUARTIERS, where="1=1", outFields="NOM", geometry=geometry, **params)
    assert "error" not in body, body
    return [feature["attributes"]["NOM"] for feature in body["features"]]


async def test_point_inside_a_polygon_in_wgs84_and_lambert93(client: TestClient) -> None:
    lon, lat = IN_CENTRE
    point = {"geometryType": "esriGeometryPoint"}
    assert await names_at(client, f"{lon},{lat}", inSR="4326", **point) == ["Centre-ville"]
    x, y = WGS_TO_L93.transform(lon, lat)
    assert await names_at(client, f"{x},{y}", inSR="2154", **point) == ["Centre-ville"]
    # inSR defaults to the layer's reference (Lambert-93 here).
    assert await names_at(client, f"{x},{y}", **point) == ["Centre-ville"]
    assert await names_at(client, json.dumps({"x": lon, "y": lat, "spatialReference": {"wkid": 4326}}), **point) == [
        "Centre-ville"
    ]
    x, y = WGS_TO_WM.transform(lon, lat)
    assert await names_at(client, f"{x},{y}", inSR="102100", **point) == ["Centre-ville"]


async def test_point_in_a_hole_is_outside(client: TestClient) -> None:
    lon, lat = IN_PARK
    assert await names_at(client, f"{lon},{lat}", inSR="4326", geometryType="esriGeometryPoint") == []


async def test_point_given_in_wgs84_without_in_sr_lands_elsewhere(client: TestClient) -> None:
    # The classic mistake: degrees read as Lambert-93 metres fall off the coast of Africa.
    lon, lat = IN_CENTRE
    assert await names_at(client, f"{lon},{lat}", geometryType="esriGeometryPoint") == []


async def test_envelope_simple_and_json(client: TestClient) -> None:
    box = "6.0810,44.5600,6.0830,44.5640"
    assert await names_at(client, box, inSR="4326") == ["Centre-ville"]
    # Across the border between two quarters.
    assert await names_at(client, "6.0680,44.5600,6.0720,44.5610", inSR="4326") == ["Centre-ville", "Fontreyne"]
    envelope = {"xmin": 6.0810, "ymin": 44.5600, "xmax": 6.0830, "ymax": 44.5640, "spatialReference": {"wkid": 4326}}
    assert await names_at(client, json.dumps(envelope), geometryType="esriGeometryEnvelope") == ["Centre-ville"]


async def test_polygon_rings(client: TestClient) -> None:
    ring = [[6.0650, 44.5600], [6.0650, 44.5750], [6.0750, 44.5750], [6.0750, 44.5600], [6.0650, 44.5600]]
    geometry = json.dumps({"rings": [ring], "spatialReference": {"wkid": 4326}})
    assert await names_at(client, geometry, geometryType="esriGeometryPolygon") == [
        "Centre-ville",
        "Fontreyne",
        "La Romette",
    ]


async def test_polyline_multipoint_and_envelope_relations(client: TestClient) -> None:
    # A path from Fontreyne to Les Eyssagnières, crossing Centre-ville.
    path = {"paths": [[[6.060, 44.560], [6.095, 44.556]]], "spatialReference": {"wkid": 4326}}
    assert await names_at(client, json.dumps(path), geometryType="esriGeometryPolyline") == [
        "Centre-ville",
        "Fontreyne",
        "Les Eyssagnières",
    ]
    points = {"points": [list(IN_CENTRE), [6.0600, 44.5600]]}
    assert await names_at(client, json.dumps(points), geometryType="esriGeometryMultipoint", inSR='{"wkid": 4326}') == [
        "Centre-ville",
        "Fontreyne",
    ]
    # In the park, the point meets no polygon but lies inside Centre-ville's envelope.
    lon, lat = IN_PARK
    point = {"geometry": f"{lon},{lat}", "geometryType": "esriGeometryPoint", "inSR": "4326"}
    assert await names_at(client, spatialRel="esriSpatialRelEnvelopeIntersects", **point) == ["Centre-ville"]


async def test_contains_and_within_semantics(client: TestClient) -> None:
    # A small box around the Médiathèque (6.0812, 44.5571), inside Centre-ville.
    box = "6.0805,44.5565,6.0820,44.5575"
    common = {"where": "1=1", "outFields": "NOM", "geometry": box, "inSR": "4326"}
    contains = await query(client, EQUIPEMENTS, spatialRel="esriSpatialRelContains", **common)
    # Contains: the query geometry contains the feature.
    assert [feature["attributes"]["NOM"] for feature in contains["features"]] == ["Médiathèque"]
    # Within: the query geometry is within the feature.
    assert await names_at(client, box, inSR="4326", spatialRel="esriSpatialRelWithin") == ["Centre-ville"]
    assert await names_at(client, box, inSR="4326", spatialRel="esriSpatialRelContains") == []
    within_points = await query(client, EQUIPEMENTS, spatialRel="esriSpatialRelWithin", **common)
    assert within_points["features"] == []


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"geometry": "1,2,3"}, "'geometry' parameter is invalid"),
        ({"geometry": "{not json"}, "'geometry' parameter is invalid"),
        ({"geometry": '{"x": 1, "y": 2}'}, "'geometry' parameter is invalid"),
        ({"geometry": "1,2,3,4", "geometryType": "esriGeometryCircle"}, "'geometryType' parameter is invalid"),
        ({"geometry": "1,2,3,4", "spatialRel": "esriSpatialRelNear"}, "'spatialRel' parameter is invalid"),
        ({"geometry": "1,2,3,4", "inSR": "999999"}, "'inSR' parameter is invalid"),
        ({"outSR": "nope"}, "'outSR' parameter is invalid"),
        ({"resultOffset": "ten"}, "'resultOffset' parameter is invalid"),
        ({"resultRecordCount": "-1"}, "'resultRecordCount' parameter is invalid"),
        ({"orderByFields": "FOO ASC"}, "'orderByFields' parameter is invalid"),
        ({"orderByFields": "NOM SIDEWAYS"}, "'orderByFields' parameter is invalid"),
        ({"objectIds": "1,a"}, "'objectIds' parameter is invalid"),
    ],
)
async def test_invalid_parameters_are_error_bodies(client: TestClient, params: dict[str, str], detail: str) -> None:
    assert await query(client, QUARTIERS, where="1=1", **params) == unable(detail)


# -- output spatial references ------------------------------------------------------------------------------------


async def test_out_sr_reprojects_points(client: TestClient) -> None:
    lon, lat = 6.0812, 44.5571  # the Médiathèque as given in the GeoJSON source
    where = "NOM = 'Médiathèque'"
    native = await query(client, EQUIPEMENTS, where=where)
    assert native["spatialReference"] == {"wkid": 2154, "latestWkid": 2154}
    x, y = WGS_TO_L93.transform(lon, lat)
    assert native["features"][0]["geometry"] == pytest.approx({"x": x, "y": y}, abs=1e-6)
    wgs = await query(client, EQUIPEMENTS, where=where, outSR="4326")
    assert wgs["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
    assert wgs["features"][0]["geometry"] == pytest.approx({"x": lon, "y": lat}, abs=1e-9)
    for out_sr in ("3857", "102100", '{"wkid": 102100}'):
        mercator = await query(client, EQUIPEMENTS, where=where, outSR=out_sr)
        assert mercator["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
        x, y = WGS_TO_WM.transform(lon, lat)
        assert mercator["features"][0]["geometry"] == pytest.approx({"x": x, "y": y}, abs=1e-4)


async def test_web_mercator_layer_to_lambert93(client: TestClient) -> None:
    body = await query(client, TRONCONS, where="NOM_VOIE = 'Rue Carnot'", outSR="2154")
    assert body["geometryType"] == "esriGeometryPolyline"
    assert body["spatialReference"] == {"wkid": 2154, "latestWkid": 2154}
    path = body["features"][0]["geometry"]["paths"][0]
    expected = [
        list(WGS_TO_L93.transform(lon, lat)) for lon, lat in [(6.0790, 44.5530), (6.0795, 44.5600), (6.08, 44.57)]
    ]
    assert len(path) == len(expected)
    for point, wanted in zip(path, expected, strict=True):
        assert point == pytest.approx(wanted, abs=1e-4)


async def test_polygon_rings_are_clockwise_outer_then_counter_clockwise_holes(client: TestClient) -> None:
    body = await query(client, QUARTIERS, where="CODE_QUARTIER = 'Q01'", outSR="4326")
    rings = body["features"][0]["geometry"]["rings"]
    assert len(rings) == 2
    assert not shapely.is_ccw(shapely.LinearRing(rings[0]))
    assert shapely.is_ccw(shapely.LinearRing(rings[1]))
    polygon = Polygon(rings[0], [rings[1]])
    assert polygon.contains(shapely.Point(IN_CENTRE)) and not polygon.contains(shapely.Point(IN_PARK))


async def test_return_geometry_false(client: TestClient) -> None:
    body = await query(client, QUARTIERS, where="1=1", returnGeometry="false")
    assert all(set(feature) == {"attributes"} for feature in body["features"])
    assert "geometryType" not in body and "spatialReference" not in body


# -- paging -------------------------------------------------------------------------------------------------------


def big_layer(count: int = 25, **options: Any) -> Layer:
    points = [(6.0 + i * 0.001, 44.5, {"RANK": (i * 7) % count, "NAME": f"p{i:02d}"}) for i in range(count)]
    fields = {"OBJECTID": "esriFieldTypeOID", "RANK": "esriFieldTypeInteger", "NAME": "esriFieldTypeString"}
    return points_layer(0, "Big", points, fields=fields, **options)


@pytest.fixture
async def big() -> AsyncIterator[TestClient]:
    client = await started(make_app({"Big": Service("Big", "FeatureServer", [big_layer()])}, max_record_count=10))
    yield client
    await client.close()


BIG = f"{BASE}/Big/FeatureServer/0"


async def test_exceeded_transfer_limit_only_when_more_remain(big: TestClient) -> None:
    body = await query(big, BIG, where="1=1")
    assert len(body["features"]) == 10 and body["exceededTransferLimit"] is True
    page = await query(big, BIG, where="1=1", resultOffset="20")
    assert len(page["features"]) == 5 and "exceededTransferLimit" not in page
    exact = await query(big, BIG, where="1=1", resultOffset="15", resultRecordCount="10")
    assert len(exact["features"]) == 10 and "exceededTransferLimit" not in exact
    small = await query(big, BIG, where="RANK < 3")
    assert len(small["features"]) == 3 and "exceededTransferLimit" not in small


async def test_short_pages_mode(big: TestClient) -> None:
    await big.post("/_simulator/mode", json={"mode": "short_pages"})
    body = await query(big, BIG, where="1=1", resultRecordCount="4")
    assert len(body["features"]) == 2 and body["exceededTransferLimit"] is True
    seen: list[int] = []
    skipped: list[int] = []
    for walk, step_by_answer in ((seen, True), (skipped, False)):
        offset = 0
        while True:
            body = await query(big, BIG, where="1=1", resultOffset=str(offset), resultRecordCount="4")
            walk += [feature["attributes"]["OBJECTID"] for feature in body["features"]]
            offset += len(body["features"]) if step_by_answer else 4
            if not body.get("exceededTransferLimit"):
                break
    assert seen == list(range(1, 26))
    # A client that steps by the count it asked for misses records.
    assert len(skipped) < 25


async def test_record_count_is_capped_at_max_record_count(big: TestClient) -> None:
    body = await query(big, BIG, where="1=1", resultRecordCount="1000")
    assert len(body["features"]) == 10 and body["exceededTransferLimit"] is True
    assert (await get(big, BIG))["maxRecordCount"] == 10


async def test_paging_with_order_by_walks_every_record_once(big: TestClient) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        body = await query(
            big, BIG, where="1=1", outFields="RANK", orderByFields="RANK DESC", resultOffset=str(offset),
            resultRecordCount="4",
        )  # fmt: skip
        seen += [feature["attributes"]["RANK"] for feature in body["features"]]
        offset += len(body["features"])
        if not body.get("exceededTransferLimit"):
            break
    assert seen == list(range(24, -1, -1))


async def test_default_order_is_object_id_and_order_by_is_multi_key(client: TestClient) -> None:
    assert await oids(client, EQUIPEMENTS, "1=1", resultRecordCount="3") == [1, 2, 3]
    body = await query(
        client, EQUIPEMENTS, where="1=1", outFields="TYPE,CAPACITE", orderByFields="type ASC, CAPACITE DESC"
    )
    pairs = [(feature["attributes"]["TYPE"], feature["attributes"]["CAPACITE"]) for feature in body["features"]]
    assert pairs[:5] == [
        ("bibliotheque", 250),
        ("bibliotheque", 40),
        ("creche", 45),
        ("culture", 350),
        ("culture", None),
    ]
    # NULL sorts first ascending.
    ascending = await oids(client, EQUIPEMENTS, "1=1", orderByFields="CAPACITE")
    assert ascending[:2] == [1, 11] and ascending[-1] == 5


async def test_layer_without_pagination_ignores_offset_and_caps(client: TestClient) -> None:
    first = await query(client, PAV, where="1=1")
    again = await query(client, PAV, where="1=1", resultOffset="5", resultRecordCount="2")
    assert first == again
    assert [feature["attributes"]["FID"] for feature in first["features"]] == [1, 2, 3, 4, 5]
    assert first["exceededTransferLimit"] is True
    # What clients do instead: all the ids (never capped), then objectIds batches.
    ids = await query(client, PAV, where="1=1", returnIdsOnly="true")
    assert ids == {"objectIdFieldName": "FID", "objectIds": [1, 2, 3, 4, 5, 6, 7, 8]}
    rest = await query(client, PAV, objectIds="6,7,8", outFields="FID")
    assert [feature["attributes"]["FID"] for feature in rest["features"]] == [6, 7, 8]
    assert "exceededTransferLimit" not in rest


async def test_count_and_ids_only(big: TestClient) -> None:
    assert await query(big, BIG, where="1=1", returnCountOnly="true") == {"count": 25}
    assert await query(big, BIG, where="RANK >= 20", returnCountOnly="true") == {"count": 5}
    ids = await query(big, BIG, where="RANK >= 20", returnIdsOnly="true")
    assert ids["objectIdFieldName"] == "OBJECTID" and len(ids["objectIds"]) == 5
    everything = await query(big, BIG, where="1=1", returnIdsOnly="true")
    assert everything["objectIds"] == list(range(1, 26))


async def test_layer_max_record_count_wins_over_the_server_default(big: TestClient) -> None:
    app = make_app({"Big": Service("Big", "FeatureServer", [big_layer(max_record_count=3)])}, max_record_count=10)
    client = await started(app)
    try:
        assert len((await query(client, BIG, where="1=1"))["features"]) == 3
    finally:
        await client.close()


# -- GeoJSON ------------------------------------------------------------------------------------------------------


async def test_geojson_output(client: TestClient) -> None:
    response = await client.get(
        f"{EQUIPEMENTS}/query",
        params={"f": "geojson", "where": "NOM = 'Médiathèque'", "outFields": "NOM,DATE_OUVERTURE", "outSR": "2154"},
    )
    assert response.status == 200
    body = json.loads(await response.text())
    assert body["type"] == "FeatureCollection" and "properties" not in body
    (feature,) = body["features"]
    assert feature["id"] == 2
    assert feature["properties"] == {"NOM": "Médiathèque", "DATE_OUVERTURE": ms(2001, 9, 15)}
    # Always WGS84 longitude, latitude, whatever outSR says.
    assert feature["geometry"]["type"] == "Point"
    assert feature["geometry"]["coordinates"] == pytest.approx([6.0812, 44.5571], abs=1e-9)


async def test_geojson_polygons_follow_the_right_hand_rule(client: TestClient) -> None:
    response = await client.get(f"{QUARTIERS}/query", params={"f": "geojson", "where": "CODE_QUARTIER = 'Q01'"})
    rings = json.loads(await response.text())["features"][0]["geometry"]["coordinates"]
    assert shapely.is_ccw(shapely.LinearRing(rings[0])) and not shapely.is_ccw(shapely.LinearRing(rings[1]))


async def test_geojson_paging_flag_is_under_properties(big: TestClient) -> None:
    response = await big.get(f"{BIG}/query", params={"f": "geojson", "where": "1=1"})
    body = json.loads(await response.text())
    assert len(body["features"]) == 10 and body["properties"] == {"exceededTransferLimit": True}


# -- tokens -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def secured() -> AsyncIterator[tuple[TestClient, list[float]]]:
    now = [1000.0]
    client = await started(make_app(token="s3cret", token_ttl=60, clock=lambda: now[0]))
    yield client, now
    await client.close()


async def test_missing_token_is_499_in_a_200(secured: tuple[TestClient, list[float]]) -> None:
    client, _ = secured
    expected = {"error": {"code": 499, "message": "Token Required", "details": []}}
    assert await query(client, QUARTIERS, where="1=1") == expected
    assert await get(client, QUARTIERS) == expected
    assert await get(client, f"{BASE}/Urbanisme/FeatureServer") == expected
    # The directory itself stays readable, and says that tokens are needed.
    assert len((await get(client, BASE))["services"]) == 2
    assert (await get(client, "/arcgis/rest/info"))["authInfo"]["isTokenBasedSecurity"] is True


async def test_wrong_or_expired_token_is_498_in_a_200(secured: tuple[TestClient, list[float]]) -> None:
    client, now = secured
    expected = {"error": {"code": 498, "message": "Invalid Token", "details": []}}
    assert await query(client, QUARTIERS, where="1=1", token="guess") == expected
    assert "features" in await query(client, QUARTIERS, where="1=1", token="s3cret")
    response = await client.get(
        f"{QUARTIERS}/query", params={"f": "json", "where": "1=1"}, headers={"X-Esri-Authorization": "Bearer s3cret"}
    )
    assert "features" in json.loads(await response.text())
    now[0] += 61
    assert await query(client, QUARTIERS, where="1=1", token="s3cret") == expected


# -- forced failures, POST, stats ---------------------------------------------------------------------------------


async def test_error200_mode(client: TestClient) -> None:
    await client.post("/_simulator/mode", json={"mode": "error200"})
    assert await query(client, QUARTIERS, where="1=1") == {
        "error": {"code": 500, "message": "Error performing query operation", "details": []}
    }
    # Metadata is still served: only the query operation fails, as when the database behind it does.
    assert (await get(client, QUARTIERS))["name"] == "Quartiers"
    await client.post("/_simulator/mode", json={"mode": "normal"})
    assert "features" in await query(client, QUARTIERS, where="1=1")


async def test_500_mode_is_an_html_page(client: TestClient) -> None:
    await client.post("/_simulator/mode", json={"mode": "500"})
    response = await client.get(f"{QUARTIERS}/query", params={"f": "json", "where": "1=1"})
    assert response.status == 500 and response.content_type == "text/html"


async def test_slow_mode(client: TestClient) -> None:
    await client.post("/_simulator/mode", json={"mode": "slow", "delay": 2})
    with pytest.raises(asyncio.TimeoutError):
        await client.get(f"{QUARTIERS}/query", params={"f": "json"}, timeout=aiohttp.ClientTimeout(total=0.2))


async def test_bad_mode_is_refused(client: TestClient) -> None:
    response = await client.post("/_simulator/mode", json={"mode": "429"})
    assert response.status == 400


async def test_stats_count_calls_statuses_and_error_codes(client: TestClient) -> None:
    await query(client, QUARTIERS, where="1=1")
    await query(client, QUARTIERS, where="nope")
    await get(client, QUARTIERS)
    stats = await (await client.get("/_simulator/stats")).json()
    assert stats["calls"] == {f"{QUARTIERS}/query": 2, QUARTIERS: 1}
    assert stats["statuses"] == {"200": 3} and stats["error_codes"] == {"400": 1} and stats["total"] == 3


async def test_form_post_equals_get(client: TestClient) -> None:
    params = {
        "f": "json",
        "where": "TYPE IN ('ecole', 'gymnase')",
        "outFields": "NOM,CAPACITE",
        "geometry": json.dumps(
            {"rings": [[[6.05, 44.55], [6.05, 44.58], [6.08, 44.58], [6.08, 44.55], [6.05, 44.55]]]}
        ),
        "geometryType": "esriGeometryPolygon",
        "inSR": "4326",
        "outSR": "4326",
        "orderByFields": "CAPACITE DESC",
    }
    by_get = await (await client.get(f"{EQUIPEMENTS}/query", params=params)).text()
    by_post = await (await client.post(f"{EQUIPEMENTS}/query", data=params)).text()
    assert by_post == by_get
    assert [feature["attributes"]["NOM"] for feature in json.loads(by_get)["features"]] == [
        "École élémentaire Porte Colombe",
        "Gymnase de Fontreyne",
        "École élémentaire de la Romette",
        "École maternelle Fontreyne",
    ]


# -- building services --------------------------------------------------------------------------------------------


def test_loader_reads_the_manifest_and_projects_storage() -> None:
    services = load_services(ROOT / "tests" / "simulators" / "data" / "arcgis-services.json")
    assert list(services) == ["Urbanisme", "Voirie"]
    equipements = services["Urbanisme"].layer(1)
    assert equipements is not None and equipements.wkid == 2154 and len(equipements.records) == 12
    x, y = WGS_TO_L93.transform(6.0812, 44.5571)
    assert equipements.geometries[1].x == pytest.approx(x) and equipements.geometries[1].y == pytest.approx(y)


def test_layers_refuse_bad_declarations() -> None:
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [6, 44]}, "properties": {}}
    with pytest.raises(ValueError, match="unknown type"):
        Layer.from_geojson(0, "x", {"features": []}, fields={"A": "esriFieldTypeText"}, geometry_type="point")
    with pytest.raises(ValueError, match="not an integer"):
        points_layer(0, "x", [(6, 44, {"N": "deux"})], fields={"N": "esriFieldTypeInteger"})
    with pytest.raises(ValueError, match="not a polygon"):
        Layer.from_geojson(0, "x", {"features": [point]}, fields={}, geometry_type="polygon")
    with pytest.raises(ValueError, match="unique"):
        points_layer(0, "x", [(6, 44, {"OBJECTID": 1}), (6, 44, {"OBJECTID": 1})], fields={})


def test_runs_standalone() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.arcgis", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "ArcGIS REST simulator" in process.stdout.readline()

        async def fetch() -> Any:
            # The banner is printed before the socket is bound: retry until it is.
            deadline = time.monotonic() + 15
            async with aiohttp.ClientSession() as session:
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}{BASE}?f=json") as response:
                            return await response.json()
                    except aiohttp.ClientConnectorError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)

        assert [service["name"] for service in asyncio.run(fetch())["services"]] == ["Urbanisme", "Voirie"]
    finally:
        process.terminate()
        process.wait(timeout=10)
