"""The WFS provider against scripted servers reproducing MapServer's and GeoServer's habits
(tests/peers/test_wfs_provider.py runs it against a real MapServer)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
import shapely

from connectors.sig.coordinates import transformer
from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from connectors.sig.layers.wfs import WFSProvider
from passerelle import NotFound, UpstreamError
from passerelle.http import HttpClient, HttpOptions
from passerelle.testing import FakeUpstream, RecordedRequest

WFS20 = "{http://www.opengis.net/wfs/2.0}"
FES = "{http://www.opengis.net/fes/2.0}"
OGC = "{http://www.opengis.net/ogc}"
GML32 = "{http://www.opengis.net/gml/3.2}"
GML = "{http://www.opengis.net/gml}"
BOUNDS = (5.40, 44.17, 7.04, 45.11)  # the layer's WGS84BoundingBox, lon/lat


def capabilities_20(
    formats: tuple[str, ...] = ("text/xml; subtype=gml/3.2", "geojson", "application/geo+json"),
    crs: tuple[str, ...] = ("urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG::2154"),
    count_default: int | None = None,
) -> str:
    values = "".join(f"<ows:Value>{f}</ows:Value>" for f in formats)
    constraint = (
        f'<ows:Constraint name="CountDefault"><ows:NoValues/><ows:DefaultValue>{count_default}</ows:DefaultValue>'
        "</ows:Constraint>"
        if count_default
        else ""
    )
    crs_items = f"<DefaultCRS>{crs[0]}</DefaultCRS>" + "".join(f"<OtherCRS>{c}</OtherCRS>" for c in crs[1:])
    west, south, east, north = BOUNDS
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wfs:WFS_Capabilities xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns="http://www.opengis.net/wfs/2.0"
    xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:ms="http://mapserver.gis.umn.edu/mapserver" version="2.0.0">
  <ows:OperationsMetadata>
    <ows:Operation name="GetFeature">
      <ows:Parameter name="outputFormat"><ows:AllowedValues>{values}</ows:AllowedValues></ows:Parameter>
    </ows:Operation>
    {constraint}
  </ows:OperationsMetadata>
  <FeatureTypeList>
    <FeatureType>
      <Name>ms:communes</Name><Title>Communes</Title><Abstract>Limites approchées</Abstract>
      {crs_items}
      <ows:WGS84BoundingBox dimensions="2">
        <ows:LowerCorner>{west} {south}</ows:LowerCorner><ows:UpperCorner>{east} {north}</ows:UpperCorner>
      </ows:WGS84BoundingBox>
    </FeatureType>
    <FeatureType><Name>ms:secteurs</Name><Title>Secteurs</Title></FeatureType>
  </FeatureTypeList>
</wfs:WFS_Capabilities>"""


CAPABILITIES_11 = f"""<?xml version="1.0" encoding="UTF-8"?>
<wfs:WFS_Capabilities xmlns:wfs="http://www.opengis.net/wfs" xmlns="http://www.opengis.net/wfs"
    xmlns:ows="http://www.opengis.net/ows" version="1.1.0">
  <ows:OperationsMetadata>
    <ows:Operation name="GetFeature">
      <ows:Parameter name="outputFormat">
        <ows:Value>text/xml; subtype=gml/3.1.1</ows:Value><ows:Value>application/json</ows:Value>
      </ows:Parameter>
    </ows:Operation>
    <ows:Constraint name="DefaultMaxFeatures"><ows:Value>3</ows:Value></ows:Constraint>
  </ows:OperationsMetadata>
  <FeatureTypeList>
    <FeatureType>
      <Name>communes</Name><Title>Communes</Title>
      <DefaultSRS>urn:ogc:def:crs:EPSG::4326</DefaultSRS>
      <ows:WGS84BoundingBox>
        <ows:LowerCorner>{BOUNDS[0]} {BOUNDS[1]}</ows:LowerCorner>
        <ows:UpperCorner>{BOUNDS[2]} {BOUNDS[3]}</ows:UpperCorner>
      </ows:WGS84BoundingBox>
    </FeatureType>
  </FeatureTypeList>
</wfs:WFS_Capabilities>"""

DESCRIBE = """<?xml version='1.0' encoding="UTF-8" ?>
<schema xmlns="http://www.w3.org/2001/XMLSchema" xmlns:gml="http://www.opengis.net/gml/3.2"
    xmlns:ms="http://mapserver.gis.umn.edu/mapserver" targetNamespace="http://mapserver.gis.umn.edu/mapserver">
  <element name="communes" type="ms:communesType" substitutionGroup="gml:AbstractFeature"/>
  <complexType name="communesType"><complexContent><extension base="gml:AbstractFeatureType"><sequence>
    <element name="the_geom" type="gml:MultiSurfacePropertyType" minOccurs="0"/>
    <element name="insee" type="string"/><element name="nom" type="string"/>
  </sequence></extension></complexContent></complexType>
</schema>"""

EXCEPTION_20 = """<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0">
  <ows:Exception exceptionCode="InvalidParameterValue" locator="typename">
    <ows:ExceptionText>msWFSGetFeature(): WFS server error. TYPENAME 'ecoles' doesn't exist in this server.
    </ows:ExceptionText>
  </ows:Exception>
</ows:ExceptionReport>"""

EXCEPTION_11 = """<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows" version="1.1.0">
  <ows:Exception exceptionCode="InvalidParameterValue" locator="filter">
    <ows:ExceptionText>Invalid or Unsupported FILTER in GetFeature</ows:ExceptionText>
  </ows:Exception>
</ows:ExceptionReport>"""

SERVICE_EXCEPTION = """<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport xmlns="http://www.opengis.net/ogc" version="1.2.0">
  <ServiceException code="InvalidParameterValue" locator="srsName">Unknown SRS</ServiceException>
</ServiceExceptionReport>"""

# Gap and its neighbour La Freissinouse, lon/lat, as squares.
GAP = (6.02, 44.50, 6.14, 44.62)
FREISSINOUSE = (5.98, 44.50, 6.02, 44.56)


def square(west: float, south: float, east: float, north: float, *, lat_lon: bool = False) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    if lat_lon:
        ring = [[y, x] for x, y in ring]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(box: tuple[float, ...], insee: str, nom: str, *, lat_lon: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": square(*box, lat_lon=lat_lon),
        "properties": {"insee": insee, "nom": nom, "code_postal": "05000"},
        **extra,
    }


def collection(*features: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **members}


def numbered(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        feature((6.0 + i * 0.01, 44.5, 6.005 + i * 0.01, 44.505), f"05{i:03d}", f"c{i}")
        for i in range(start, start + count)
    ]


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test/wfs", HttpOptions(retries=0, breaker_threshold=0))
    yield client
    await client.close()


def provider(upstream: FakeUpstream, http: HttpClient, **kwargs: Any) -> WFSProvider:
    # A MapServer-like URL: the map alias in the query string must be kept.
    return WFSProvider(http, f"{upstream.url}/cgi-bin/mapserv?map=HAUTES_ALPES", **kwargs)


def script(upstream: FakeUpstream, capabilities: str = "", *answers: Any) -> None:
    upstream.reply("GET", "/cgi-bin/mapserv", body=capabilities or capabilities_20(), content_type="text/xml")
    for answer in answers:
        if "type" in answer:  # a GeoJSON answer; else the keyword arguments of a reply
            upstream.reply("GET", "/cgi-bin/mapserv", json=answer, content_type="application/geo+json")
        else:
            upstream.reply("GET", "/cgi-bin/mapserv", **answer)


def script_posts(upstream: FakeUpstream, *answers: dict[str, Any]) -> None:
    for answer in answers:
        upstream.reply("POST", "/cgi-bin/mapserv", json=answer, content_type="application/geo+json")


def posted(upstream: FakeUpstream) -> list[ET.Element]:
    """The XML GetFeature bodies POSTed (filtered queries in WFS 2.0.0)."""
    return [ET.fromstring(r.body) for r in upstream.requests if r.method == "POST"]


def params(request: RecordedRequest) -> dict[str, str]:
    return {key: values[-1] for key, values in request.query.items()}


def getfeatures(upstream: FakeUpstream) -> list[dict[str, str]]:
    return [params(r) for r in upstream.requests if params(r).get("REQUEST") == "GetFeature"]


async def test_layers_from_wfs_2_capabilities_cached(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream)
    wfs = provider(fake_upstream, http)

    layers = await wfs.layers()
    await wfs.layers()

    assert [(info.name, info.title, info.description, info.bbox) for info in layers] == [
        ("ms:communes", "Communes", "Limites approchées", BOUNDS),
        ("ms:secteurs", "Secteurs", "", None),
    ]
    assert len(fake_upstream.requests) == 1
    assert params(fake_upstream.requests[0]) == {
        "map": "HAUTES_ALPES",
        "SERVICE": "WFS",
        "VERSION": "2.0.0",
        "REQUEST": "GetCapabilities",
    }


async def test_layers_from_wfs_1_1_capabilities(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, CAPABILITIES_11)

    layers = await provider(fake_upstream, http, version="1.1.0").layers()

    assert [(info.name, info.bbox) for info in layers] == [("communes", BOUNDS)]
    assert params(fake_upstream.requests[0])["VERSION"] == "1.1.0"


async def test_getfeature_parameters_and_geojson_format_from_capabilities(
    fake_upstream: FakeUpstream, http: HttpClient
) -> None:
    script(fake_upstream, "", collection(feature(GAP, "05061", "Gap", id="communes.05061")))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes"))

    assert [(f.id, f.properties["nom"]) for f in batch.features] == [("communes.05061", "Gap")]
    assert batch.number_matched == 1
    assert getfeatures(fake_upstream) == [
        {
            "map": "HAUTES_ALPES",
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "GetFeature",
            "TYPENAMES": "ms:communes",  # the unprefixed name found its feature type
            "SRSNAME": "urn:ogc:def:crs:EPSG::4326",
            "OUTPUTFORMAT": "application/geo+json",
            "COUNT": "500",
            "STARTINDEX": "0",
        }
    ]


@pytest.mark.parametrize(
    ("offered", "override", "expected"),
    [
        (("text/xml; subtype=gml/3.2", "geojson", "application/json"), None, "application/json"),
        (("GML3", "GEOJSON"), None, "GEOJSON"),
        (("GML3", "application/json; subtype=geojson"), None, "application/json; subtype=geojson"),
        (("GML3",), "json", "json"),
    ],
)
async def test_geojson_output_format_choice(
    fake_upstream: FakeUpstream, http: HttpClient, offered: tuple[str, ...], override: str | None, expected: str
) -> None:
    script(fake_upstream, capabilities_20(formats=offered), collection())

    await provider(fake_upstream, http, output_format=override).features(LayerQuery("ms:communes"))

    assert getfeatures(fake_upstream)[0]["OUTPUTFORMAT"] == expected


async def test_no_geojson_format_is_a_clear_error(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, capabilities_20(formats=("GML2", "GML3")))

    with pytest.raises(UpstreamError, match=r"no GeoJSON output .*formats: GML2, GML3"):
        await provider(fake_upstream, http).features(LayerQuery("ms:communes"))


async def test_unknown_layer_lists_the_layers(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream)

    with pytest.raises(NotFound, match=r"no layer 'ecoles' .* layers: ms:communes, ms:secteurs"):
        await provider(fake_upstream, http).features(LayerQuery("ecoles"))


async def test_bbox_is_sent_lat_lon_with_the_urn(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "", collection(feature(GAP, "05061", "Gap")))

    await provider(fake_upstream, http).features(LayerQuery("communes", bbox=(6.0, 44.5, 6.2, 44.6)))

    sent = getfeatures(fake_upstream)[0]
    assert sent["BBOX"] == "44.5,6.0,44.6,6.2,urn:ogc:def:crs:EPSG::4326"
    assert "FILTER" not in sent


async def test_bbox_is_sent_lon_lat_in_crs84_when_offered(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    crs = ("urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:OGC:1.3:CRS84")
    script(fake_upstream, capabilities_20(crs=crs), collection(feature(GAP, "05061", "Gap")))

    await provider(fake_upstream, http).features(LayerQuery("communes", bbox=(6.0, 44.5, 6.2, 44.6)))

    sent = getfeatures(fake_upstream)[0]
    assert sent["BBOX"] == "6.0,44.5,6.2,44.6,urn:ogc:def:crs:OGC:1.3:CRS84"
    assert sent["SRSNAME"] == "urn:ogc:def:crs:OGC:1.3:CRS84"


@pytest.mark.parametrize("lat_lon", [False, True], ids=["lon-lat like MapServer", "lat-lon like GeoServer"])
async def test_answers_in_either_axis_order_come_out_lon_lat(
    fake_upstream: FakeUpstream, http: HttpClient, lat_lon: bool
) -> None:
    answer = collection(
        feature(GAP, "05061", "Gap", lat_lon=lat_lon),
        feature(FREISSINOUSE, "05059", "La Freissinouse", lat_lon=lat_lon),
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}},
    )
    script(fake_upstream, "", answer)

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", point=(6.0786, 44.5594)))

    assert [f.properties["insee"] for f in batch.features] == ["05061"]
    assert batch.features[0].geometry.equals(shapely.box(*GAP))


@pytest.mark.parametrize("lat_lon", [False, True], ids=["lon-lat", "lat-lon"])
async def test_without_a_wgs84_box_the_order_is_judged_by_the_box_sent(
    fake_upstream: FakeUpstream, http: HttpClient, lat_lon: bool
) -> None:
    script(fake_upstream, "", collection(feature(GAP, "GAP-1", "Centre", lat_lon=lat_lon)))

    batch = await provider(fake_upstream, http).features(LayerQuery("secteurs", point=(6.0786, 44.5594)))

    assert [f.properties["nom"] for f in batch.features] == ["Centre"]
    assert batch.features[0].geometry.equals(shapely.box(*GAP))


async def test_point_is_a_small_box_then_covers_locally(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    # The server answers both communes for the box (its own test is an intersection).
    script(fake_upstream, "", collection(feature(GAP, "05061", "Gap"), feature(FREISSINOUSE, "05059", "Freissinouse")))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", point=(6.0786, 44.5594)))

    assert [f.properties["nom"] for f in batch.features] == ["Gap"]
    south, west, north, east, crs = getfeatures(fake_upstream)[0]["BBOX"].split(",")
    assert crs == "urn:ogc:def:crs:EPSG::4326"
    assert float(south) < 44.5594 < float(north) and float(west) < 6.0786 < float(east)
    assert float(north) - float(south) < 1e-3


async def test_ids_from_id_property_geojson_id_gml_id_fid_or_position(
    fake_upstream: FakeUpstream, http: HttpClient
) -> None:
    with_gml_id = feature(GAP, "05061", "Gap")
    with_gml_id["properties"]["gml_id"] = "communes.7"
    with_fid = feature(GAP, "05062", "Fid")
    with_fid["properties"]["fid"] = 8.0
    script(
        fake_upstream,
        "",
        collection(feature(GAP, "05060", "Id", id="c.6"), with_gml_id, with_fid, feature(GAP, "05063", "None")),
        {"body": capabilities_20(), "content_type": "text/xml"},
        collection(feature(GAP, "05060", "Id", id="c.6")),
    )
    wfs = provider(fake_upstream, http)

    batch = await wfs.features(LayerQuery("communes"))
    keyed = await provider(fake_upstream, http, id_property="insee").features(LayerQuery("communes"))

    assert [f.id for f in batch.features] == ["c.6", "communes.7", "8", "communes.4"]
    assert [f.id for f in keyed.features] == ["05060"]


async def test_filters_and_bbox_go_in_one_fes_filter_posted(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "")
    script_posts(fake_upstream, collection(feature(GAP, "05061", "Gap")))

    query = LayerQuery("communes", bbox=(6.0, 44.5, 6.2, 44.6), filters={"code_postal": "05000", "nom": "Gap"})
    batch = await provider(fake_upstream, http).features(query)

    assert [f.properties["nom"] for f in batch.features] == ["Gap"]
    assert getfeatures(fake_upstream) == []  # a filtered GetFeature is POSTed in WFS 2.0.0
    request = next(r for r in fake_upstream.requests if r.method == "POST")
    assert request.query == {"map": ["HAUTES_ALPES"]}  # the fixed parameters of the URL are kept
    assert request.headers["Content-Type"] == "application/xml"
    (get_feature,) = posted(fake_upstream)
    assert get_feature.tag == f"{WFS20}GetFeature"
    assert {k: get_feature.attrib[k] for k in ("service", "version", "outputFormat", "startIndex")} == {
        "service": "WFS",
        "version": "2.0.0",
        "outputFormat": "application/geo+json",
        "startIndex": "0",
    }
    wfs_query = get_feature.find(f"{WFS20}Query")
    assert wfs_query is not None and wfs_query.attrib["typeNames"] == "ms:communes"
    # The type name's prefix is declared, with the namespace the capabilities gave it.
    assert b'xmlns:ms="http://mapserver.gis.umn.edu/mapserver"' in request.body
    root = wfs_query.find(f"{FES}Filter")
    assert root is not None
    (both,) = root
    assert both.tag == f"{FES}And"
    equal = [
        (e.findtext(f"{FES}ValueReference"), e.findtext(f"{FES}Literal"))
        for e in both.iterfind(f"{FES}PropertyIsEqualTo")
    ]
    assert equal == [("code_postal", "05000"), ("nom", "Gap")]
    envelope = both.find(f"{FES}BBOX/{GML32}Envelope")
    assert envelope is not None
    assert envelope.attrib["srsName"] == "urn:ogc:def:crs:EPSG::4326"
    assert envelope.findtext(f"{GML32}lowerCorner") == "44.5 6.0"
    assert envelope.findtext(f"{GML32}upperCorner") == "44.6 6.2"


async def test_wfs_1_1_uses_ogc_filter_typename_and_maxfeatures(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, CAPABILITIES_11, collection(feature(GAP, "05061", "Gap")))

    await provider(fake_upstream, http, version="1.1.0").features(LayerQuery("communes", filters={"insee": "05061"}))

    sent = getfeatures(fake_upstream)[0]
    assert (sent["VERSION"], sent["TYPENAME"], sent["MAXFEATURES"], sent["OUTPUTFORMAT"]) == (
        "1.1.0",
        "communes",
        "3",  # the advertised DefaultMaxFeatures caps the page size
        "application/json",
    )
    equal = ET.fromstring(sent["FILTER"]).find(f"{OGC}PropertyIsEqualTo")
    assert equal is not None
    assert (equal.findtext(f"{OGC}PropertyName"), equal.findtext(f"{OGC}Literal")) == ("insee", "05061")


async def test_a_server_ignoring_the_filter_is_filtered_here(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "")
    script_posts(
        fake_upstream, collection(feature(GAP, "05061", "Gap"), feature(FREISSINOUSE, "05059", "Freissinouse"))
    )

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", filters={"insee": "05059"}))

    assert [f.properties["nom"] for f in batch.features] == ["Freissinouse"]


async def test_properties_ask_for_the_geometry_too_and_are_trimmed(
    fake_upstream: FakeUpstream, http: HttpClient
) -> None:
    script(fake_upstream, "", {"body": DESCRIBE, "content_type": "text/xml"})
    script_posts(fake_upstream, collection(feature(GAP, "05061", "Gap")))

    query = LayerQuery("communes", properties=("nom",), filters={"insee": "05061"})
    wfs = provider(fake_upstream, http, id_property="insee")
    batch = await wfs.features(query)

    assert batch.features[0].properties == {"nom": "Gap"}
    assert batch.features[0].id == "05061"
    (get_feature,) = posted(fake_upstream)
    names = [e.text for e in get_feature.iterfind(f"{WFS20}Query/{WFS20}PropertyName")]
    assert names == ["the_geom", "nom", "insee"]
    # Without a filter, the same projection goes in KVP.
    fake_upstream.reply("GET", "/cgi-bin/mapserv", json=collection(feature(GAP, "05061", "Gap")))
    await wfs.features(LayerQuery("communes", properties=("nom",), limit=1))
    assert getfeatures(fake_upstream)[-1]["PROPERTYNAME"] == "the_geom,nom,insee"


async def test_pages_capped_silently_by_count_default_are_followed(
    fake_upstream: FakeUpstream, http: HttpClient
) -> None:
    """MapServer: COUNT capped at CountDefault, no numberReturned, numberMatched on the last page only."""
    script(
        fake_upstream,
        capabilities_20(count_default=2),
        collection(*numbered(2)),
        collection(*numbered(2, 2)),
        collection(*numbered(1, 4), numberMatched=5),
    )

    batch = await provider(fake_upstream, http).features(LayerQuery("communes"))

    assert len(batch.features) == batch.number_matched == 5
    assert [(p["COUNT"], p["STARTINDEX"]) for p in getfeatures(fake_upstream)] == [("2", "0"), ("2", "2"), ("2", "4")]


async def test_paging_stops_at_number_matched(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(
        fake_upstream,
        "",
        collection(*numbered(2), numberMatched=4, numberReturned=2),
        collection(*numbered(2, 2), numberMatched=4, numberReturned=2),
    )

    batch = await provider(fake_upstream, http, page_size=2).features(LayerQuery("communes"))

    assert len(batch.features) == 4
    assert len(getfeatures(fake_upstream)) == 2  # no third request for an empty page


async def test_paging_stops_at_the_limit(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "", collection(*numbered(3)))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", limit=3))

    assert [f.properties["nom"] for f in batch.features] == ["c0", "c1", "c2"]
    assert getfeatures(fake_upstream)[0]["COUNT"] == "3"


async def test_too_many_features_from_number_matched(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "", collection(*numbered(2), numberMatched=120000))

    with pytest.raises(TooManyFeatures, match="120000 features match"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_too_many_features_while_paging(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, "", *(collection(*numbered(2, start)) for start in range(0, 10, 2)))

    with pytest.raises(TooManyFeatures, match="more than 5"):
        await provider(fake_upstream, http, page_size=2, max_features=5).features(LayerQuery("communes"))

    assert len(getfeatures(fake_upstream)) == 3


async def test_a_server_that_ignores_startindex(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(fake_upstream, capabilities_20(count_default=2), collection(*numbered(2)))  # the same page forever

    with pytest.raises(UpstreamError, match="same features again for STARTINDEX=2: it cannot page 'ms:communes'"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_geoserver_total_features_ends_paging(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    script(
        fake_upstream,
        "",
        collection(*numbered(2), totalFeatures=3, numberReturned=2),
        collection(*numbered(1, 2), totalFeatures=3, numberReturned=1),
    )

    batch = await provider(fake_upstream, http, page_size=2).features(LayerQuery("communes"))

    assert len(batch.features) == 3
    assert len(getfeatures(fake_upstream)) == 2


async def test_an_exception_report_with_http_500_is_quoted_not_retried(
    fake_upstream: FakeUpstream, http: HttpClient
) -> None:
    script(fake_upstream, "", {"status": 500, "body": SERVICE_EXCEPTION, "content_type": "text/xml"})
    client = HttpClient("test/wfs-retries", HttpOptions(retries=2, backoff_base=0, breaker_threshold=0))
    try:
        with pytest.raises(UpstreamError, match=r"InvalidParameterValue \(srsName\): Unknown SRS"):
            await provider(fake_upstream, client).features(LayerQuery("communes"))
    finally:
        await client.close()

    assert len(getfeatures(fake_upstream)) == 1


async def test_geoserver_json_exceptions(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    answer = {"version": "2.0.0", "exceptions": [{"code": "InvalidParameterValue", "locator": "typeName", "text": "x"}]}
    script(fake_upstream, "", {"status": 400, "json": answer})

    with pytest.raises(UpstreamError, match="refused the GetFeature request: InvalidParameterValue: typeName: x"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


@pytest.mark.parametrize(
    ("status", "body", "version", "expected"),
    [
        (400, EXCEPTION_20, "2.0.0", r"InvalidParameterValue \(typename\): .*TYPENAME 'ecoles' doesn't exist"),
        (200, EXCEPTION_20, "2.0.0", r"InvalidParameterValue \(typename\)"),
        (200, EXCEPTION_11, "1.1.0", r"InvalidParameterValue \(filter\): Invalid or Unsupported FILTER"),
        (200, SERVICE_EXCEPTION, "1.1.0", r"InvalidParameterValue \(srsName\): Unknown SRS"),
    ],
)
async def test_exception_reports_quote_the_server(
    fake_upstream: FakeUpstream, http: HttpClient, status: int, body: str, version: str, expected: str
) -> None:
    capabilities = CAPABILITIES_11 if version == "1.1.0" else ""
    script(fake_upstream, capabilities, {"status": status, "body": body, "content_type": "text/xml"})

    with pytest.raises(UpstreamError, match=f"refused the GetFeature request: {expected}"):
        await provider(fake_upstream, http, version=version).features(LayerQuery("communes"))


async def test_an_exception_report_to_getcapabilities(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", "/cgi-bin/mapserv", status=400, body=EXCEPTION_20, content_type="text/xml")

    with pytest.raises(UpstreamError, match="refused the GetCapabilities request: InvalidParameterValue"):
        await provider(fake_upstream, http).layers()


async def test_an_html_page_is_not_a_wfs(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    """An unknown map alias: MapServer answers a 200 HTML page."""
    page = "<HTML><HEAD><TITLE>MapServer Message</TITLE></HEAD><BODY>msLoadMap(): Unable to access file.</BODY></HTML>"
    fake_upstream.reply("GET", "/cgi-bin/mapserv", body=page, content_type="text/html")

    with pytest.raises(UpstreamError, match=r"answered an HTML page to the GetCapabilities request .* a WFS 2\.0\.0"):
        await provider(fake_upstream, http).layers()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"body": '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0"/>'}, "XML, not GeoJSON"),
        ({"body": "<!DOCTYPE html><html><body>Proxy error</body></html>"}, "an HTML page"),
        ({"body": ""}, "an empty body"),
        ({"json": {"error": "nope"}}, "not a GeoJSON FeatureCollection"),
        ({"body": "Service unavailable, try later"}, "not JSON"),
        ({"status": 404, "body": "Not Found"}, "HTTP 404"),
    ],
)
async def test_answers_that_are_not_geojson(
    fake_upstream: FakeUpstream, http: HttpClient, answer: dict[str, Any], expected: str
) -> None:
    script(fake_upstream, "", answer)

    with pytest.raises(UpstreamError, match=expected):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_a_projected_crs_is_reprojected(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    x, y = transformer(4326, 2154).transform(6.0786, 44.5594)
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": {"insee": "05061"}}
    script(fake_upstream, "", collection(point))

    batch = await provider(fake_upstream, http, crs=2154).features(LayerQuery("communes"))

    assert getfeatures(fake_upstream)[0]["SRSNAME"] == "urn:ogc:def:crs:EPSG::2154"
    lon, lat = batch.features[0].geometry.coords[0]
    assert (lon, lat) == pytest.approx((6.0786, 44.5594), abs=1e-7)


def test_unsupported_version() -> None:
    with pytest.raises(ValueError, match=r"1\.0\.0"):
        WFSProvider(HttpClient("test/wfs"), "http://example.org/wfs", version="1.0.0")
