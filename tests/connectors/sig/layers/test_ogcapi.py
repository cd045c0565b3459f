"""The OGC API - Features provider against scripted servers reproducing pygeoapi's habits
(tests/peers/test_ogcapi_provider.py runs it against a real pygeoapi)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import shapely

from connectors.sig.layers.ogcapi import OGCAPIProvider
from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from passerelle import NotFound, UpstreamError
from passerelle.http import HttpClient, HttpOptions
from passerelle.testing import FakeUpstream, RecordedRequest

ITEMS = "/ogc/collections/communes/items"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GAP = (6.02, 44.50, 6.14, 44.62)
FREISSINOUSE = (5.98, 44.50, 6.02, 44.56)

COLLECTIONS = {
    "collections": [
        {
            "id": "communes",
            "title": "Communes",
            "description": "Limites approchées",
            "extent": {"spatial": {"bbox": [[5.4, 44.17, 7.04, 45.11]], "crs": CRS84}},
            "links": [],
        },
        {"id": "secteurs", "title": "Secteurs", "extent": {"spatial": {"bbox": [[6.01, 44.49, 0, 6.14, 44.64, 10]]}}},
        {
            "id": "l93",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]], "crs": "http://www.opengis.net/def/crs/EPSG/0/2154"}},
        },
    ],
    "links": [],
}


def square(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


def feature(box: tuple[float, ...], ident: str | None, nom: str, **properties: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "Feature", "geometry": square(*box), "properties": {"nom": nom, **properties}}
    if ident is not None:
        found["id"] = ident
    return found


def page(*features: dict[str, Any], next_href: str | None = None, **members: Any) -> dict[str, Any]:
    links = [{"rel": "self", "href": "http://elsewhere.invalid/self", "type": "application/geo+json"}]
    if next_href is not None:
        links.append({"rel": "next", "href": next_href, "type": "application/geo+json", "title": "Items (next)"})
    return {"type": "FeatureCollection", "features": list(features), "links": links, **members}


def numbered(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        feature((6.0 + i * 0.01, 44.5, 6.005 + i * 0.01, 44.505), f"05{i:03d}", f"c{i}")
        for i in range(start, start + count)
    ]


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test/ogcapi", HttpOptions(retries=0, breaker_threshold=0))
    yield client
    await client.close()


def provider(upstream: FakeUpstream, http: HttpClient, **kwargs: Any) -> OGCAPIProvider:
    return OGCAPIProvider(http, f"{upstream.url}/ogc/", **kwargs)


def params(request: RecordedRequest) -> dict[str, str]:
    return {key: values[-1] for key, values in request.query.items()}


def items_requests(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if r.path == ITEMS]


async def test_layers_from_collections(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", "/ogc/collections", json=COLLECTIONS)

    layers = await provider(fake_upstream, http).layers()

    assert [(i.name, i.title, i.description, i.bbox) for i in layers] == [
        ("communes", "Communes", "Limites approchées", (5.4, 44.17, 7.04, 45.11)),
        ("secteurs", "Secteurs", "", (6.01, 44.49, 6.14, 44.64)),  # 3D box: heights dropped
        ("l93", "", "", None),  # a box in another CRS is not a WGS84 one
    ]
    assert params(fake_upstream.requests[0]) == {"f": "json"}


async def test_items_request_and_features(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, json=page(feature(GAP, "05061", "Gap"), feature(GAP, None, "Sans id")))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", bbox=(6.0, 44.5, 6.2, 44.6)))

    assert [(f.id, f.properties["nom"]) for f in batch.features] == [("05061", "Gap"), ("communes.2", "Sans id")]
    assert batch.number_matched == 2
    (request,) = items_requests(fake_upstream)
    assert params(request) == {"f": "json", "limit": "500", "bbox": "6.0,44.5,6.2,44.6"}  # lon/lat, CRS84
    assert "application/geo+json" in request.headers["Accept"]


async def test_filters_are_sent_and_checked_again_locally(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    """pygeoapi ignores an unknown parameter and answers everything."""
    fake_upstream.reply(
        "GET",
        ITEMS,
        json=page(
            feature(GAP, "05061", "Gap", code_postal="05000"), feature(FREISSINOUSE, "05059", "Fr", code_postal="05500")
        ),
    )

    query = LayerQuery("communes", filters={"code_postal": "05000", "limit": "x"}, properties=("nom",))
    batch = await provider(fake_upstream, http).features(query)

    assert [(f.id, f.properties) for f in batch.features] == []  # 'limit' cannot hold: checked locally only
    sent = params(items_requests(fake_upstream)[0])
    assert sent["code_postal"] == "05000"
    assert sent["limit"] == "500"  # a property named like a parameter does not shadow it

    batch = await provider(fake_upstream, http).features(
        LayerQuery("communes", filters={"code_postal": "05000"}, properties=("nom",))
    )
    assert [(f.id, f.properties) for f in batch.features] == [("05061", {"nom": "Gap"})]


async def test_point_is_a_small_box_then_covers(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, json=page(feature(GAP, "05061", "Gap"), feature(FREISSINOUSE, "05059", "Fr")))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes", point=(6.0786, 44.5594)))

    assert [f.id for f in batch.features] == ["05061"]
    west, south, east, north = (float(v) for v in params(items_requests(fake_upstream)[0])["bbox"].split(","))
    assert west < 6.0786 < east and south < 44.5594 < north
    assert east - west < 1e-3
    assert batch.features[0].geometry.equals(shapely.box(*GAP))


async def test_next_links_absolute_and_relative_are_followed(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply(
        "GET", ITEMS, json=page(*numbered(2), next_href=f"{fake_upstream.url}{ITEMS}?offset=2&limit=2&f=json")
    )
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(2, 2), next_href="items?offset=4&limit=2&f=json"))
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(2, 4), next_href="?offset=6&limit=2&f=json"))
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(1, 6), numberMatched=7))

    batch = await provider(fake_upstream, http, page_size=2).features(LayerQuery("communes"))

    assert [f.properties["nom"] for f in batch.features] == [f"c{i}" for i in range(7)]
    assert [params(r).get("offset") for r in items_requests(fake_upstream)] == [None, "2", "4", "6"]
    assert params(items_requests(fake_upstream)[0])["limit"] == "2"


async def test_paging_stops_at_the_limit(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(2), next_href=f"{ITEMS}?offset=2"))
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(2, 2), next_href=f"{ITEMS}?offset=4"))

    batch = await provider(fake_upstream, http, page_size=2).features(LayerQuery("communes", limit=3))

    assert [f.properties["nom"] for f in batch.features] == ["c0", "c1", "c2"]
    assert len(items_requests(fake_upstream)) == 2


async def test_too_many_from_number_matched(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(2), numberMatched=80000, next_href="?offset=2"))

    with pytest.raises(TooManyFeatures, match="80000 features match"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_too_many_while_paging(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    for offset in range(2, 10, 2):
        fake_upstream.reply("GET", ITEMS, json=page(*numbered(2), next_href=f"?offset={offset}"))

    with pytest.raises(TooManyFeatures, match="more than 5"):
        await provider(fake_upstream, http, page_size=2, max_features=5).features(LayerQuery("communes"))
    assert len(items_requests(fake_upstream)) == 3


async def test_a_next_link_going_round_is_an_error(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(1), next_href="?offset=1"))

    with pytest.raises(UpstreamError, match="goes round in circles"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_unknown_collection_lists_the_collections(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply(
        "GET",
        "/ogc/collections/ecoles/items",
        status=404,
        json={"code": "NotFound", "type": "NotFound", "description": "Collection not found"},
    )
    fake_upstream.reply("GET", "/ogc/collections", json=COLLECTIONS)

    with pytest.raises(NotFound, match=r"no collection 'ecoles' .*; collections: communes, secteurs, l93"):
        await provider(fake_upstream, http).features(LayerQuery("ecoles"))


async def test_pygeoapi_errors_are_quoted(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    error = {"code": "InvalidParameterValue", "type": "InvalidParameterValue", "description": "Invalid bbox"}
    fake_upstream.reply("GET", ITEMS, status=400, json=error)

    with pytest.raises(
        UpstreamError, match="refused the items of 'communes': HTTP 400 InvalidParameterValue: Invalid bbox"
    ):
        await provider(fake_upstream, http).features(LayerQuery("communes", bbox=(6.0, 44.5, 6.2, 44.6)))


async def test_a_404_on_a_known_collection_quotes_the_server(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", ITEMS, status=404, json={"code": "NotFound", "description": "Items not served"})
    fake_upstream.reply("GET", "/ogc/collections", json=COLLECTIONS)

    with pytest.raises(UpstreamError, match="HTTP 404 NotFound: Items not served"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"body": "<!DOCTYPE html><html><body>pygeoapi</body></html>", "content_type": "text/html"}, "an HTML page"),
        ({"body": "", "content_type": "application/json"}, "an empty body"),
        ({"body": "not json", "content_type": "text/plain"}, "not JSON"),
        ({"json": {"type": "Feature"}}, "not a FeatureCollection"),
        ({"json": {"type": "FeatureCollection"}}, "without features"),
        ({"status": 500, "body": "boom"}, "HTTP 500"),
    ],
)
async def test_answers_that_are_not_geojson(
    fake_upstream: FakeUpstream, http: HttpClient, reply: dict[str, Any], expected: str
) -> None:
    fake_upstream.reply("GET", ITEMS, **reply)

    with pytest.raises(UpstreamError, match=expected):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_a_feature_not_in_wgs84_is_an_error(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    lambert = feature((944000, 6388000, 945000, 6389000), "05061", "Gap")
    fake_upstream.reply("GET", ITEMS, json=page(lambert))

    with pytest.raises(UpstreamError, match="feature 1 of 'communes': coordinates are not WGS84"):
        await provider(fake_upstream, http).features(LayerQuery("communes"))


async def test_an_html_landing_page_for_collections(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    fake_upstream.reply("GET", "/ogc/collections", body="<html><body>Welcome</body></html>", content_type="text/html")

    with pytest.raises(UpstreamError, match="an HTML page to /collections"):
        await provider(fake_upstream, http).layers()


async def test_a_json_error_with_http_500_is_quoted_not_retried(fake_upstream: FakeUpstream) -> None:
    error = {"code": "NoApplicableCode", "type": "NoApplicableCode", "description": "data query error"}
    fake_upstream.reply("GET", ITEMS, status=500, json=error)
    client = HttpClient("test/ogcapi-retries", HttpOptions(retries=2, backoff_base=0, breaker_threshold=0))
    try:
        with pytest.raises(UpstreamError, match="HTTP 500 NoApplicableCode: data query error"):
            await provider(fake_upstream, client).features(LayerQuery("communes"))
    finally:
        await client.close()

    assert len(items_requests(fake_upstream)) == 1


async def test_the_geojson_next_link_is_chosen_among_formats(fake_upstream: FakeUpstream, http: HttpClient) -> None:
    first = page(*numbered(1))
    first["links"] += [
        {"rel": "next", "href": f"{ITEMS}?offset=1&f=html", "type": "text/html"},
        {"rel": "next", "href": f"{ITEMS}?offset=1&f=application%2Fjson", "type": "application/json"},
        {"rel": "next", "href": f"{ITEMS}?offset=1&f=application%2Fgeo%2Bjson", "type": "application/geo+json"},
    ]
    fake_upstream.reply("GET", ITEMS, json=first)
    fake_upstream.reply("GET", ITEMS, json=page(*numbered(1, 1)))

    batch = await provider(fake_upstream, http).features(LayerQuery("communes"))

    assert len(batch.features) == 2
    assert params(items_requests(fake_upstream)[1])["f"] == "application/geo+json"
