"""A real MapServer 8.0 (Debian's cgi-mapserver) serves WFS 2.0 and 1.1.0 as protocols.md §4.1
says, with the differences recorded here.

``make test`` starts it (scripts/with-gis.sh) over the three layers of demo/data/gis/ and
exports ``PASSERELLE_TEST_WFS_URL`` (``…/cgi-bin/mapserv?map=HAUTES_ALPES``, MapServer's
defaults) and ``PASSERELLE_TEST_WFS_COUNTED_URL`` (the same layers with
``wfs_compute_number_matched``), and ``PASSERELLE_TEST_MAPSERVER_OGCAPI_URL`` for
MapServer's own OGC API - Features (tests at the end); without them these tests are
skipped. Expected values are computed from the GeoJSON files the server reads.

What the opengis connector has to live with, as established here:

- GeoJSON output is ``OUTPUTFORMAT=geojson`` or ``application/geo+json``;
  ``application/json`` is refused (400). Features carry no ``id``: the identifier is
  the ``gml_featureid`` property (``insee``, ``secteur``).
- ``COUNT`` is capped at ``wfs_maxfeatures`` (50, advertised as ``CountDefault``)
  without a word, so a page shorter than the COUNT asked for is not the last one.
  The GeoJSON has no ``numberReturned``, and ``numberMatched`` only when the server
  knows it: on the last page, or always with ``wfs_compute_number_matched``.
  ``RESULTTYPE=hits`` is capped at 50 too, and with ``OUTPUTFORMAT=geojson`` its body is
  empty: without the option, count by paging.
- Axis order: in WFS 2.0 a BBOX in ``EPSG:4326``, in ``urn:ogc:def:crs:EPSG::4326`` or
  without a CRS is **lat,lon**; only ``urn:ogc:def:crs:OGC:1.3:CRS84`` takes lon,lat. In
  WFS 1.1.0 a BBOX without a CRS is lon,lat, with ``EPSG:4326`` lat,lon; in 1.0.0 always
  lon,lat. The wrong order is a 200 with no feature. The GeoJSON output is always lon,lat.
- A FES 2.0 filter works by KVP ``FILTER=`` and in a POSTed XML GetFeature, BBOX and
  FILTER are mutually exclusive, and ``RESOURCEID`` fails for an identifier that looks
  like a number (``05061`` becomes 5061 in OGR SQL): filter on the property instead.
- Errors are ``ows:ExceptionReport`` with 400 in WFS 2.0 but **200** in WFS 1.1.0; an
  unknown ``map=`` alias is a 200 HTML page.
- MapServer's OGC API: its ``next`` links **drop the bbox** (page with ``offset``
  yourself), it needs ``f=json`` whatever the Accept header, ignores property filters,
  and its 400 errors say ``"InvalidParamterValue"`` (sic).

Latency over the project's CGI runner (a fork of mapserv, a map load and an OGR read of
the GeoJSON per request), 2 cores, 15 calls each: median 76 ms for a BBOX GetFeature of
the communes, 61 ms for a sector lookup by point, 74 ms for a full page of 50 communes,
61 ms for GetCapabilities: the fork and the map load dominate.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import shapely
from pyproj import Transformer

WFS_URL = os.environ.get("PASSERELLE_TEST_WFS_URL", "")
COUNTED_URL = os.environ.get("PASSERELLE_TEST_WFS_COUNTED_URL", "")
DATA = Path(__file__).parents[2] / "demo" / "data" / "gis"

NS = {
    "wfs": "http://www.opengis.net/wfs/2.0",
    "ows": "http://www.opengis.net/ows/1.1",
    "ows10": "http://www.opengis.net/ows",
    "fes": "http://www.opengis.net/fes/2.0",
}
FES = 'xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"'
# In the town centre of Gap (place Jean Marcellin), lon, lat.
GAP_CENTRE = (6.0786, 44.5594)
WGS84_TO_L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not WFS_URL, reason="no MapServer (make test starts one: scripts/with-gis.sh)"),
]


def load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return json.load(f)["features"]


COMMUNES = load("communes-05.geojson")
SECTORS = load("secteurs-collecte-gap.geojson")
POINTS = load("communes-05-points.geojson")


def shape(feature: dict[str, Any]) -> shapely.Geometry:
    return shapely.geometry.shape(feature["geometry"])


def containing(features: list[dict[str, Any]], key: str, lon: float, lat: float) -> list[str]:
    point = shapely.Point(lon, lat)
    return [f["properties"][key] for f in features if shape(f).intersects(point)]


def request(
    url: str = "", body: bytes | None = None, content_type: str = "text/xml", **params: str | int
) -> tuple[int, str, bytes]:
    """The status, Content-Type and body of a request to MapServer (POST when ``body``)."""
    target = (url or WFS_URL) + ("&" + urllib.parse.urlencode(params) if params else "")
    headers = {"Content-Type": content_type} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(target, body, headers), timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def wfs(version: str = "2.0.0", url: str = "", **params: str | int) -> tuple[int, str, bytes]:
    return request(url, SERVICE="WFS", VERSION=version, **params)


def get_features(version: str = "2.0.0", url: str = "", **params: str | int) -> dict[str, Any]:
    params.setdefault("OUTPUTFORMAT", "geojson")
    status, content_type, body = wfs(version, url, REQUEST="GetFeature", **params)
    assert (status, content_type) == (200, "application/geo+json"), body[:500]
    return json.loads(body)


def ids(collection: dict[str, Any], key: str = "insee") -> list[str]:
    return [f["properties"][key] for f in collection["features"]]


def exception(body: bytes, namespace: str = "ows") -> tuple[str, str | None, str]:
    """exceptionCode, locator and text of an ows:ExceptionReport."""
    root = ET.fromstring(body)
    assert root.tag == f"{{{NS[namespace]}}}ExceptionReport"
    item = root.find(f"{namespace}:Exception", NS)
    assert item is not None
    text = item.findtext(f"{namespace}:ExceptionText", "", NS)
    return item.attrib["exceptionCode"], item.attrib.get("locator"), text


@pytest.fixture(scope="module")
def capabilities() -> ET.Element:
    status, content_type, body = wfs(REQUEST="GetCapabilities")
    assert status == 200
    assert content_type.startswith("text/xml")
    return ET.fromstring(body)


def test_capabilities_list_the_three_layers_with_geojson_and_three_crs(capabilities: ET.Element) -> None:
    types = {t.findtext("wfs:Name", "", NS): t for t in capabilities.iterfind(".//wfs:FeatureType", NS)}

    assert list(types) == ["ms:communes", "ms:secteurs_collecte", "ms:communes_points"]
    communes = types["ms:communes"]
    assert communes.findtext("wfs:DefaultCRS", "", NS) == "urn:ogc:def:crs:EPSG::4326"
    assert [c.text for c in communes.iterfind("wfs:OtherCRS", NS)] == [
        "urn:ogc:def:crs:EPSG::2154",
        "urn:ogc:def:crs:EPSG::3857",
    ]
    formats = [f.text for f in communes.iterfind("wfs:OutputFormats/wfs:Format", NS)]
    assert "application/geo+json" in formats
    assert "application/json" not in formats
    # The WGS84 box is lon,lat, whatever the CRS of the data, and computed from it.
    lower = communes.findtext("ows:WGS84BoundingBox/ows:LowerCorner", "", NS)
    upper = communes.findtext("ows:WGS84BoundingBox/ows:UpperCorner", "", NS)
    bounds = shapely.union_all([shape(f) for f in COMMUNES]).bounds
    assert [float(v) for v in f"{lower} {upper}".split()] == pytest.approx(bounds, abs=1e-6)


def test_capabilities_advertise_paging_and_the_page_size(capabilities: ET.Element) -> None:
    constraints = {
        c.attrib["name"]: c.findtext("ows:DefaultValue", "", NS)
        for c in capabilities.iterfind("ows:OperationsMetadata/ows:Constraint", NS)
    }

    assert constraints["ImplementsResultPaging"] == "TRUE"
    assert constraints["CountDefault"] == "50"
    assert constraints["KVPEncoding"] == constraints["XMLEncoding"] == "TRUE"


def test_operation_urls_end_with_an_ampersand(capabilities: ET.Element) -> None:
    """OWSLib and others send GetFeature to this URL, not to the one they were given."""
    get = capabilities.find(".//ows:Operation[@name='GetFeature']/ows:DCP/ows:HTTP/ows:Get", NS)

    assert get is not None
    assert get.attrib["{http://www.w3.org/1999/xlink}href"] == WFS_URL + "&"


@pytest.mark.parametrize("output_format", ["geojson", "application/geo+json"])
def test_getfeature_geojson_has_the_data_properties_and_no_feature_id(output_format: str) -> None:
    collection = get_features(TYPENAMES="communes", OUTPUTFORMAT=output_format, COUNT=3)

    assert collection["type"] == "FeatureCollection"
    assert collection["name"] == "communes"
    expected = COMMUNES[:3]
    for feature, source in zip(collection["features"], expected, strict=True):
        assert "id" not in feature
        # Types come from the data (gml_types auto): codes keep their leading zero.
        assert feature["properties"] == source["properties"]
        assert shape(feature).equals_exact(shape(source), 1e-9)


def test_the_typename_prefix_is_optional() -> None:
    assert ids(get_features(TYPENAMES="ms:communes", COUNT=2)) == ids(get_features(TYPENAMES="communes", COUNT=2))


@pytest.mark.parametrize("output_format", ["application/json", "json"])
def test_application_json_is_not_an_output_format(output_format: str) -> None:
    status, content_type, body = wfs(REQUEST="GetFeature", TYPENAMES="communes", OUTPUTFORMAT=output_format)

    assert status == 400
    assert content_type == "text/xml; charset=UTF-8"
    assert exception(body)[:2] == ("InvalidParameterValue", "outputformat")


@pytest.mark.parametrize("count", [None, 51, 500])
def test_count_is_capped_at_the_page_size_silently(count: int | None) -> None:
    params = {"COUNT": count} if count else {}

    assert len(get_features(TYPENAMES="communes", **params)["features"]) == 50


def test_paging_walks_every_commune_once_and_geojson_knows_the_total_only_at_the_end() -> None:
    pages = []
    start = 0
    while True:
        page = get_features(TYPENAMES="communes", COUNT=50, STARTINDEX=start)
        if not page["features"]:
            break
        pages.append(page)
        start += 50

    assert [len(p["features"]) for p in pages] == [50, 50, 50, 11]
    assert [i for p in pages for i in ids(p)] == [f["properties"]["insee"] for f in COMMUNES]
    assert [p.get("numberMatched") for p in pages] == [None, None, None, len(COMMUNES)]
    assert not any("numberReturned" in p for p in pages)


def test_gml_paging_says_unknown_then_the_total_and_links_the_next_page() -> None:
    def members(**params: str | int) -> dict[str, str]:
        status, _, body = wfs(REQUEST="GetFeature", TYPENAMES="communes", PROPERTYNAME="nom", **params)
        assert status == 200
        return ET.fromstring(body).attrib

    first = members(COUNT=50)
    last = members(COUNT=50, STARTINDEX=150)

    assert (first["numberMatched"], first["numberReturned"]) == ("unknown", "50")
    assert first["next"].endswith("&STARTINDEX=50")
    assert (last["numberMatched"], last["numberReturned"]) == ("161", "11")
    assert "next" not in last


def test_hits_count_at_most_the_page_size_without_compute_number_matched() -> None:
    def hits(**params: str | int) -> tuple[int, dict[str, str]]:
        status, _, body = wfs(REQUEST="GetFeature", TYPENAMES="communes", RESULTTYPE="hits", **params)
        return status, ET.fromstring(body).attrib

    status, attributes = hits()
    assert status == 200
    assert (attributes["numberMatched"], attributes["numberReturned"]) == ("50", "0")
    # Counted from STARTINDEX, up to the page size: the whole layer is not even counted.
    assert hits(STARTINDEX=100)[1]["numberMatched"] == "0"


def test_hits_in_geojson_is_an_empty_200() -> None:
    status, content_type, body = wfs(
        REQUEST="GetFeature", TYPENAMES="communes", RESULTTYPE="hits", OUTPUTFORMAT="geojson"
    )

    assert (status, content_type, body) == (200, "application/geo+json", b"")


@pytest.mark.skipif(not COUNTED_URL, reason="no PASSERELLE_TEST_WFS_COUNTED_URL")
def test_with_compute_number_matched_every_page_and_hits_know_the_total() -> None:
    status, _, body = wfs(url=COUNTED_URL, REQUEST="GetFeature", TYPENAMES="communes", RESULTTYPE="hits")
    first = get_features(url=COUNTED_URL, TYPENAMES="communes", COUNT=50)
    middle = get_features(url=COUNTED_URL, TYPENAMES="communes", COUNT=50, STARTINDEX=50)

    assert status == 200
    assert ET.fromstring(body).attrib["numberMatched"] == str(len(COMMUNES))
    assert first["numberMatched"] == middle["numberMatched"] == len(COMMUNES)
    assert "numberReturned" not in first


def test_bbox_returns_the_communes_that_intersect_it() -> None:
    lon_min, lat_min, lon_max, lat_max = 6.0, 44.5, 6.2, 44.6
    box = shapely.box(lon_min, lat_min, lon_max, lat_max)
    expected = [f["properties"]["insee"] for f in COMMUNES if shape(f).intersects(box)]

    found = get_features(
        TYPENAMES="communes", BBOX=f"{lat_min},{lon_min},{lat_max},{lon_max},urn:ogc:def:crs:EPSG::4326"
    )

    assert len(expected) == 17
    assert ids(found) == expected
    # Complete in one page, so the server knows the total.
    assert found["numberMatched"] == len(expected)


LON, LAT = GAP_CENTRE
LONLAT = f"{LON - 0.0005},{LAT - 0.0005},{LON + 0.0005},{LAT + 0.0005}"
LATLON = f"{LAT - 0.0005},{LON - 0.0005},{LAT + 0.0005},{LON + 0.0005}"


@pytest.mark.parametrize(
    ("version", "bbox", "found"),
    [
        ("2.0.0", f"{LATLON},urn:ogc:def:crs:EPSG::4326", True),
        ("2.0.0", f"{LONLAT},urn:ogc:def:crs:EPSG::4326", False),
        # Unlike GeoServer, MapServer reads the short EPSG:4326 form lat,lon too in 2.0.
        ("2.0.0", f"{LATLON},EPSG:4326", True),
        ("2.0.0", f"{LONLAT},EPSG:4326", False),
        ("2.0.0", LATLON, True),
        ("2.0.0", LONLAT, False),
        ("2.0.0", f"{LONLAT},urn:ogc:def:crs:OGC:1.3:CRS84", True),
        ("1.1.0", LONLAT, True),
        ("1.1.0", LATLON, False),
        ("1.1.0", f"{LATLON},EPSG:4326", True),
        ("1.1.0", f"{LONLAT},EPSG:4326", False),
        ("1.0.0", f"{LONLAT},EPSG:4326", True),
    ],
)
def test_axis_order_of_bbox(version: str, bbox: str, found: bool) -> None:
    """The wrong order is not an error: a 200 with no feature, like an empty place."""
    typename = {"TYPENAMES" if version == "2.0.0" else "TYPENAME": "communes"}

    collection = get_features(version, BBOX=bbox, **typename)

    assert ids(collection) == (["05061"] if found else [])


def test_geojson_coordinates_are_lon_lat_whatever_the_srsname() -> None:
    point = POINTS[0]["geometry"]["coordinates"]
    for srsname in ("EPSG:4326", "urn:ogc:def:crs:EPSG::4326"):
        collection = get_features(TYPENAMES="communes_points", COUNT=1, SRSNAME=srsname)
        assert collection["features"][0]["geometry"]["coordinates"] == point


def test_srsname_lambert93_reprojects_like_pyproj() -> None:
    collection = get_features(TYPENAMES="communes_points", COUNT=5, SRSNAME="EPSG:2154")

    assert collection["crs"] == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}}
    for feature, source in zip(collection["features"], POINTS[:5], strict=True):
        expected = WGS84_TO_L93.transform(*source["geometry"]["coordinates"])
        assert feature["geometry"]["coordinates"] == pytest.approx(expected, abs=0.001)


def test_bbox_in_lambert93_is_easting_northing() -> None:
    x, y = WGS84_TO_L93.transform(*GAP_CENTRE)
    bbox = f"{x - 50},{y - 50},{x + 50},{y + 50},urn:ogc:def:crs:EPSG::2154"

    found = get_features(TYPENAMES="secteurs_collecte", BBOX=bbox)

    assert ids(found, "secteur") == containing(SECTORS, "secteur", *GAP_CENTRE) == ["GAP-1"]


def test_fes_filter_by_kvp() -> None:
    equal = (
        f"<fes:Filter {FES}><fes:PropertyIsEqualTo><fes:ValueReference>insee</fes:ValueReference>"
        "<fes:Literal>05061</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>"
    )

    found = get_features(TYPENAMES="communes", FILTER=equal)

    assert [f["properties"] for f in found["features"]] == [
        f["properties"] for f in COMMUNES if f["properties"]["insee"] == "05061"
    ]


def test_sector_lookup_by_point_with_a_fes_intersects_filter() -> None:
    """The sector lookup: which collection sector contains this address (lat,lon in gml:pos)."""
    lon, lat = GAP_CENTRE
    intersects = (
        f"<fes:Filter {FES}><fes:Intersects><fes:ValueReference>msGeometry</fes:ValueReference>"
        f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat} {lon}</gml:pos></gml:Point>'
        "</fes:Intersects></fes:Filter>"
    )

    found = get_features(TYPENAMES="secteurs_collecte", FILTER=intersects)

    assert ids(found, "secteur") == containing(SECTORS, "secteur", lon, lat)
    assert found["features"][0]["properties"] == {
        "secteur": "GAP-1",
        "nom": "Centre-ville",
        "jour_collecte": "lundi et jeudi",
        "insee": "05061",
    }


def test_fes_filter_in_a_posted_getfeature() -> None:
    lon_min, lat_min, lon_max, lat_max = 5.9, 44.4, 6.6, 44.7
    box = shapely.box(lon_min, lat_min, lon_max, lat_max)
    expected = [
        f["properties"]["insee"] for f in COMMUNES if f["properties"]["population"] > 2000 and shape(f).intersects(box)
    ]
    document = f"""<?xml version="1.0" encoding="UTF-8"?>
<wfs:GetFeature service="WFS" version="2.0.0" outputFormat="application/geo+json" count="50"
    xmlns:wfs="http://www.opengis.net/wfs/2.0" {FES}>
  <wfs:Query typeNames="communes">
    <fes:Filter>
      <fes:And>
        <fes:PropertyIsGreaterThan>
          <fes:ValueReference>population</fes:ValueReference><fes:Literal>2000</fes:Literal>
        </fes:PropertyIsGreaterThan>
        <fes:BBOX>
          <fes:ValueReference>msGeometry</fes:ValueReference>
          <gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326">
            <gml:lowerCorner>{lat_min} {lon_min}</gml:lowerCorner><gml:upperCorner>{lat_max} {lon_max}</gml:upperCorner>
          </gml:Envelope>
        </fes:BBOX>
      </fes:And>
    </fes:Filter>
  </wfs:Query>
</wfs:GetFeature>"""

    status, content_type, body = request(body=document.encode())

    assert (status, content_type) == (200, "application/geo+json")
    assert ids(json.loads(body)) == expected
    assert len(expected) == 7


def test_sortby_is_honoured() -> None:
    expected = sorted(COMMUNES, key=lambda f: -f["properties"]["population"])[:3]

    found = get_features(TYPENAMES="communes", SORTBY="population DESC", COUNT=3)

    assert ids(found) == [f["properties"]["insee"] for f in expected]


def test_resourceid_works_for_a_text_identifier() -> None:
    assert ids(get_features(RESOURCEID="secteurs_collecte.GAP-3"), "secteur") == ["GAP-3"]


def test_resourceid_fails_for_an_identifier_that_looks_like_a_number() -> None:
    """The identifier 05061 reaches OGR SQL as the number 5061: filter on insee instead."""
    status, _, body = wfs(REQUEST="GetFeature", RESOURCEID="communes.05061", OUTPUTFORMAT="geojson")

    assert status == 400
    assert exception(body)[:2] == ("NoApplicableCode", "mapserv")


def test_unknown_type_name_is_a_400_exception_report() -> None:
    status, content_type, body = wfs(REQUEST="GetFeature", TYPENAMES="ms:ecoles", OUTPUTFORMAT="geojson")

    assert status == 400
    assert content_type == "text/xml; charset=UTF-8"
    code, locator, text = exception(body)
    assert (code, locator) == ("InvalidParameterValue", "typename")
    assert "TYPENAME 'ecoles' doesn't exist in this server" in text
    assert ET.fromstring(body).attrib["version"] == "2.0.0"


def test_in_wfs_1_1_0_the_exception_report_comes_with_200() -> None:
    status, content_type, body = wfs("1.1.0", REQUEST="GetFeature", TYPENAME="ecoles")

    assert status == 200
    assert content_type == "text/xml; charset=UTF-8"
    assert exception(body, "ows10")[:2] == ("InvalidParameterValue", "typename")


@pytest.mark.parametrize(
    ("params", "code", "locator"),
    [
        ({}, "MissingParameterValue", "typenames"),
        ({"TYPENAMES": "communes", "SRSNAME": "EPSG:27572"}, "InvalidParameterValue", "srsname"),
        ({"TYPENAMES": "communes", "BBOX": "44,6,45,7", "FILTER": "<fes:Filter/>"}, "NoApplicableCode", "mapserv"),
        (
            {
                "TYPENAMES": "communes",
                "FILTER": f"<fes:Filter {FES}><fes:PropertyIsEqualTo><fes:ValueReference>code</fes:ValueReference>"
                "<fes:Literal>1</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>",
            },
            "InvalidParameterValue",
            "filter",
        ),
        ({"TYPENAMES": "communes", "FILTER": "<fes:Filter"}, "InvalidParameterValue", "filter"),
    ],
)
def test_other_errors_are_400(params: dict[str, str], code: str, locator: str) -> None:
    status, _, body = wfs(REQUEST="GetFeature", OUTPUTFORMAT="geojson", **params)

    assert status == 400
    assert exception(body)[:2] == (code, locator)


def test_an_unknown_map_alias_is_a_200_html_page() -> None:
    base = WFS_URL.split("?")[0]

    status, content_type, body = request(f"{base}?map=NOPE", SERVICE="WFS", REQUEST="GetCapabilities")

    assert (status, content_type) == (200, "text/html")
    assert b"MapServer Message" in body


def test_wfs_1_1_0_getfeature_with_typename_and_maxfeatures() -> None:
    collection = get_features("1.1.0", TYPENAME="communes", MAXFEATURES=3)
    next_page = get_features("1.1.0", TYPENAME="communes", MAXFEATURES=3, STARTINDEX=3)

    assert ids(collection) + ids(next_page) == [f["properties"]["insee"] for f in COMMUNES[:6]]


# MapServer's own OGC API - Features (PASSERELLE_TEST_MAPSERVER_OGCAPI_URL): a second
# implementation next to pygeoapi's, with its own differences.

OGCAPI_URL = os.environ.get("PASSERELLE_TEST_MAPSERVER_OGCAPI_URL", "")
needs_ogcapi = pytest.mark.skipif(not OGCAPI_URL, reason="no PASSERELLE_TEST_MAPSERVER_OGCAPI_URL")


def ogcapi(path: str, headers: dict[str, str] | None = None, **params: str | int) -> tuple[int, str, Any]:
    url = f"{OGCAPI_URL}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], json.load(error)


def next_link(body: dict[str, Any]) -> str | None:
    return next((item["href"] for item in body["links"] if item["rel"] == "next"), None)


@needs_ogcapi
def test_ogcapi_next_links_drop_the_bbox_so_page_with_offset() -> None:
    """MapServer 8.0's next link keeps f, limit and offset only: following it pages
    through the whole collection. A client has to keep its own parameters."""
    box = shapely.box(6.0, 44.5, 6.6, 44.9)
    expected = [f["properties"]["insee"] for f in COMMUNES if shape(f).intersects(box)]
    query = {"f": "json", "bbox": "6.0,44.5,6.6,44.9"}

    status, content_type, first = ogcapi("/collections/communes/items", limit=100, **query)
    with urllib.request.urlopen(next_link(first) or "", timeout=30) as response:
        followed = json.load(response)
    _, _, second = ogcapi("/collections/communes/items", limit=50, offset=50, **query)

    assert (status, content_type) == (200, "application/json")
    # limit is capped at oga_max_limit (50), and unlike pygeoapi the next link says so.
    assert next_link(first) == f"{OGCAPI_URL}/collections/communes/items?f=json&limit=50&offset=50"
    assert (first["numberMatched"], first["numberReturned"]) == (75, 50)
    assert (followed["numberMatched"], followed["numberReturned"]) == (len(COMMUNES), 50)
    assert (second["numberMatched"], second["numberReturned"]) == (75, 25)
    assert next_link(second) is None
    assert [f["id"] for page in (first, second) for f in page["features"]] == expected


@needs_ogcapi
def test_ogcapi_feature_ids_come_from_gml_featureid_and_work_with_leading_zeros() -> None:
    status, _, feature = ogcapi("/collections/communes/items/05061", f="json")

    assert status == 200
    assert feature["id"] == "05061"
    assert feature["properties"] == next(f["properties"] for f in COMMUNES if f["properties"]["insee"] == "05061")


@needs_ogcapi
def test_ogcapi_sector_lookup_with_a_point_bbox() -> None:
    lon, lat = GAP_CENTRE

    _, _, body = ogcapi("/collections/secteurs_collecte/items", f="json", bbox=f"{lon},{lat},{lon},{lat}")

    assert [f["id"] for f in body["features"]] == containing(SECTORS, "secteur", lon, lat)


@needs_ogcapi
def test_ogcapi_ignores_property_filters() -> None:
    _, _, body = ogcapi("/collections/communes/items", f="json", insee="05061")

    assert body["numberMatched"] == len(COMMUNES)


@needs_ogcapi
def test_ogcapi_needs_f_json_whatever_the_accept_header() -> None:
    """Without f=json it renders HTML, and no HTML template directory is configured."""
    assert ogcapi("/collections/communes/items", {"Accept": "application/geo+json"}, limit=1) == (
        500,
        "application/json",
        {"code": "ConfigError", "description": "Template directory not set."},
    )


@needs_ogcapi
@pytest.mark.parametrize(
    ("path", "params", "status", "body"),
    [
        # Sic: "Paramter".
        (
            "/collections/communes/items",
            {"offset": 200},
            400,
            {"code": "InvalidParamterValue", "description": "Offset out of range."},
        ),
        (
            "/collections/communes/items",
            {"limit": "abc"},
            400,
            {"code": "InvalidParamterValue", "description": "Bad value for limit."},
        ),
        (
            "/collections/communes/items",
            {"bbox": "6.0,44.5"},
            400,
            {"code": "InvalidParamterValue", "description": "Bad value for bbox."},
        ),
        (
            "/collections/communes/items/99999",
            {},
            404,
            {"code": "NotFound", "description": "Collection items id query failed."},
        ),
        ("/collections/ecoles/items", {}, 404, {"code": "NotFound", "description": "Invalid collection."}),
    ],
)
def test_ogcapi_errors(path: str, params: dict[str, str | int], status: int, body: dict[str, str]) -> None:
    assert ogcapi(path, f="json", **params) == (status, "application/json", body)
