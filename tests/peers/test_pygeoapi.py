"""A real pygeoapi 0.21.0 serves OGC API - Features Part 1 as protocols.md §4.2 says, with
the details recorded here.

``make test`` starts it (scripts/with-gis.sh, gunicorn, GeoJSON provider over the three
layers of demo/data/gis/) and exports ``PASSERELLE_TEST_OGCAPI_URL``; without it these
tests are skipped. Expected values are computed from the GeoJSON files it reads.

What the opengis connector has to live with, as established here:

- Paging: ``limit`` above ``max_items`` (50) is capped silently, but the ``next`` link
  carries the right ``offset``, so following ``next`` until there is none is safe;
  ``numberMatched`` and ``numberReturned`` are always there.
- ``bbox`` is lon,lat (CRS84); lat,lon is a 200 with no feature. ``crs`` and
  ``bbox-crs`` other than CRS84 are refused (400) unless the collection lists them.
- Property filters are plain query parameters compared as strings; **an unknown
  parameter is ignored**, so a misspelt filter returns the whole collection.
  ``sortby`` is ignored by the GeoJSON provider.
- Items are sent as ``application/json`` although the links say ``application/geo+json``.
- Errors are JSON ``{"code", "type", "description"}``: 400 ``InvalidParameterValue``,
  404 ``NotFound``.

Latency with gunicorn (2 workers, 2 cores), 15 calls each: median 12 ms for a bbox query
of the communes, 2 ms for a sector lookup by point, 8 ms for a page of 50 communes (the
provider re-reads and filters the 200 kB file on every request).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import shapely

OGCAPI_URL = os.environ.get("PASSERELLE_TEST_OGCAPI_URL", "")
DATA = Path(__file__).parents[2] / "demo" / "data" / "gis"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GAP_CENTRE = (6.0786, 44.5594)  # place Jean Marcellin, lon, lat

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not OGCAPI_URL, reason="no pygeoapi (make test starts one: scripts/with-gis.sh)"),
]


def load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return json.load(f)["features"]


COMMUNES = load("communes-05.geojson")
SECTORS = load("secteurs-collecte-gap.geojson")
POINTS = load("communes-05-points.geojson")
LAYERS = {"communes": COMMUNES, "secteurs_collecte": SECTORS, "communes_points": POINTS}


def shape(feature: dict[str, Any]) -> shapely.Geometry:
    return shapely.geometry.shape(feature["geometry"])


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """The status, Content-Type and JSON body of GET ``url``."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], json.load(error)


def get(path: str, **params: str | int) -> tuple[int, str, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return fetch(f"{OGCAPI_URL}{path}{query}")


def items(collection: str = "communes", **params: str | int) -> dict[str, Any]:
    status, _, body = get(f"/collections/{collection}/items", **params)
    assert status == 200, body
    return body


def link(body: dict[str, Any], rel: str) -> str | None:
    hrefs = [item["href"] for item in body["links"] if item["rel"] == rel]
    assert len(hrefs) <= 1
    return hrefs[0] if hrefs else None


def ids(body: dict[str, Any]) -> list[str]:
    return [f["id"] for f in body["features"]]


def test_collections_are_the_three_layers_with_their_extent() -> None:
    status, _, body = get("/collections", f="json")

    assert status == 200
    collections = {c["id"]: c for c in body["collections"]}
    assert list(collections) == list(LAYERS)
    for name, features in LAYERS.items():
        extent = collections[name]["extent"]["spatial"]
        assert extent["crs"] == CRS84
        # The configured extent (rounded outwards) contains the data.
        (west, south, east, north) = extent["bbox"][0]
        assert shapely.box(west, south, east, north).contains(shapely.union_all([shape(f) for f in features]))


def test_a_collection_says_its_item_type_and_crs() -> None:
    status, _, body = get("/collections/communes", f="json")

    assert status == 200
    assert body["id"] == "communes"
    assert body["itemType"] == "feature"
    assert body["crs"] == [CRS84]
    assert body["storageCrs"] == CRS84
    assert body["extent"]["spatial"]["bbox"] == [[5.40, 44.17, 7.04, 45.11]]


def test_queryables_give_the_property_types() -> None:
    status, _, body = get("/collections/communes/queryables", f="json")

    assert status == 200
    properties = body["properties"]
    assert properties["insee"] == {"title": "insee", "type": "string", "x-ogc-role": "id"}
    assert properties["population"]["type"] == "integer"
    assert properties["code_postal"]["type"] == "string"


def test_items_default_page_counts_and_links() -> None:
    body = items()

    assert body["type"] == "FeatureCollection"
    assert (body["numberMatched"], body["numberReturned"]) == (len(COMMUNES), 10)
    assert ids(body) == [f["properties"]["insee"] for f in COMMUNES[:10]]
    assert link(body, "next") == f"{OGCAPI_URL}/collections/communes/items?offset=10"
    assert link(body, "prev") is None


def test_items_are_application_json_whatever_is_asked() -> None:
    for headers in ({}, {"Accept": "application/geo+json"}):
        status, content_type, body = fetch(f"{OGCAPI_URL}/collections/communes/items?limit=1", headers)
        assert (status, content_type) == (200, "application/json")
    assert [item["type"] for item in body["links"] if item["rel"] == "self"] == ["application/geo+json"]


def test_a_feature_carries_the_id_field_as_id_and_the_data_unchanged() -> None:
    (feature,) = items(insee="05061")["features"]
    source = next(f for f in COMMUNES if f["properties"]["insee"] == "05061")

    assert feature["id"] == "05061"
    assert feature["properties"] == source["properties"]
    assert feature["geometry"] == source["geometry"]


def test_bbox_and_limit_then_follow_next_to_the_end() -> None:
    box = shapely.box(6.0, 44.5, 6.6, 44.9)
    expected = [f["properties"]["insee"] for f in COMMUNES if shape(f).intersects(box)]

    pages = [items(bbox="6.0,44.5,6.6,44.9", limit=20)]
    while (url := link(pages[-1], "next")) is not None:
        status, _, body = fetch(url)
        assert status == 200
        pages.append(body)

    assert len(expected) == 75
    assert [p["numberReturned"] for p in pages] == [20, 20, 20, 15]
    assert {p["numberMatched"] for p in pages} == {len(expected)}
    assert [i for p in pages for i in ids(p)] == expected
    # The next links keep the bbox.
    assert "bbox=6.0,44.5,6.6,44.9" in (link(pages[0], "next") or "")


def test_limit_above_max_items_is_capped_but_next_stays_right() -> None:
    first = items(limit=100)

    assert first["numberReturned"] == 50
    assert link(first, "next") == f"{OGCAPI_URL}/collections/communes/items?offset=50&limit=100"
    seen = ids(first)
    url = link(first, "next")
    while url is not None:
        _, _, body = fetch(url)
        seen += ids(body)
        url = link(body, "next")
    assert seen == [f["properties"]["insee"] for f in COMMUNES]


def test_an_offset_past_the_end_is_an_empty_page_with_only_prev() -> None:
    body = items(offset=200, limit=50)

    assert (body["numberMatched"], body["numberReturned"], body["features"]) == (len(COMMUNES), 0, [])
    assert link(body, "next") is None
    assert link(body, "prev") == f"{OGCAPI_URL}/collections/communes/items?offset=150&limit=50"


def test_sector_lookup_with_a_point_bbox() -> None:
    point = shapely.Point(*GAP_CENTRE)
    expected = [f["properties"]["secteur"] for f in SECTORS if shape(f).intersects(point)]
    lon, lat = GAP_CENTRE

    body = items("secteurs_collecte", bbox=f"{lon},{lat},{lon},{lat}")

    assert ids(body) == expected == ["GAP-1"]
    assert body["features"][0]["properties"]["jour_collecte"] == "lundi et jeudi"


def test_bbox_in_lat_lon_order_finds_nothing() -> None:
    lon, lat = GAP_CENTRE

    body = items(bbox=f"{lat - 0.01},{lon - 0.01},{lat + 0.01},{lon + 0.01}")

    assert (body["numberMatched"], body["features"]) == (0, [])


@pytest.mark.parametrize(
    ("name", "value"),
    [("insee", "05061"), ("code_postal", "05000"), ("population", "41293"), ("nom", "Briançon")],
)
def test_property_filters_compare_as_strings(name: str, value: str) -> None:
    expected = [f["properties"]["insee"] for f in COMMUNES if str(f["properties"][name]) == value]

    body = items(limit=50, **{name: value})

    assert expected
    assert ids(body) == expected
    assert body["numberMatched"] == len(expected)


def test_an_unknown_property_filter_is_ignored() -> None:
    assert items(departement="38")["numberMatched"] == len(COMMUNES)


def test_sortby_is_ignored_by_the_geojson_provider() -> None:
    assert ids(items(sortby="-population", limit=3)) == [f["properties"]["insee"] for f in COMMUNES[:3]]


def test_properties_selects_the_returned_properties() -> None:
    (feature,) = items(limit=1, properties="nom")["features"]

    assert feature["properties"] == {"nom": COMMUNES[0]["properties"]["nom"]}
    assert feature["id"] == COMMUNES[0]["properties"]["insee"]


def test_one_item_by_id() -> None:
    status, _, feature = get("/collections/secteurs_collecte/items/GAP-6", f="json")
    source = SECTORS[5]

    assert status == 200
    assert feature["type"] == "Feature"
    assert feature["id"] == "GAP-6"
    assert feature["properties"] == source["properties"]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert shape(feature).equals_exact(shape(source), 0)
    assert {item["rel"] for item in feature["links"]} >= {"self", "collection"}


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "description"),
    [
        ("/collections/communes/items/99999", {}, 404, "NotFound", "identifier not found"),
        ("/collections/ecoles/items", {}, 404, "NotFound", "Collection not found"),
        (
            "/collections/communes/items",
            {"bbox": "6.0,44.5"},
            400,
            "InvalidParameterValue",
            "bbox should be either 4 values (minx,miny,maxx,maxy) or 6 values (minx,miny,minz,maxx,maxy,maxz)",
        ),
        (
            "/collections/communes/items",
            {"limit": "abc"},
            400,
            "InvalidParameterValue",
            "limit value should be an integer",
        ),
        (
            "/collections/communes/items",
            {"limit": 0},
            400,
            "InvalidParameterValue",
            "limit value should be strictly positive",
        ),
        (
            "/collections/communes/items",
            {"crs": "http://www.opengis.net/def/crs/EPSG/0/2154"},
            400,
            "InvalidParameterValue",
            "CRS 'http://www.opengis.net/def/crs/EPSG/0/2154' not supported for this collection. "
            f"List of supported CRSs: {CRS84}.",
        ),
        (
            "/collections/communes/items",
            {"bbox": "6.0,44.5,6.2,44.6", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
            400,
            "NoApplicableCode",
            "bbox-crs http://www.opengis.net/def/crs/EPSG/0/4326 not supported for this collection",
        ),
    ],
)
def test_errors_are_json(path: str, params: dict[str, str | int], status: int, code: str, description: str) -> None:
    assert get(path, **params) == (status, "application/json", {"code": code, "type": code, "description": description})
