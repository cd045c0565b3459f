"""OGCAPIProvider against the real pygeoapi of scripts/with-gis.sh (and MapServer's own OGC API
when it is there), compared with the GeoJSON files they serve (demo/data/gis/).

pygeoapi caps ``limit`` at 50 (``max_items``) and honours property filters; MapServer's
OGC API ignores them (numberMatched stays 161): the provider's local check is what makes
both answer the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import shapely

from connectors.sig.layers.ogcapi import OGCAPIProvider
from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from passerelle import NotFound
from passerelle.http import HttpClient, HttpOptions, Response

SERVERS = {
    "pygeoapi": os.environ.get("PASSERELLE_TEST_OGCAPI_URL", ""),
    "mapserver": os.environ.get("PASSERELLE_TEST_MAPSERVER_OGCAPI_URL", ""),
}
DATA = Path(__file__).parents[2] / "demo" / "data" / "gis"
GAP_CENTRE = (6.0786, 44.5594)  # place Jean Marcellin, lon, lat

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(
        not any(SERVERS.values()), reason="no OGC API peer (make test starts them: scripts/with-gis.sh)"
    ),
]


def load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return json.load(f)["features"]


COMMUNES = load("communes-05.geojson")
SECTORS = load("secteurs-collecte-gap.geojson")
POINTS = load("communes-05-points.geojson")


def shape(feature: dict[str, Any]) -> shapely.Geometry:
    return shapely.geometry.shape(feature["geometry"])


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test/peers/ogcapi", HttpOptions(retries=0, total_timeout=60))
    yield client
    await client.close()


@pytest.fixture(params=list(SERVERS))
def url(request: pytest.FixtureRequest) -> str:
    if not SERVERS[request.param]:
        pytest.skip(f"no {request.param} OGC API peer")
    return SERVERS[request.param]


async def test_layers_are_the_three_collections(http: HttpClient, url: str) -> None:
    layers = {info.name: info for info in await OGCAPIProvider(http, url).layers()}

    assert list(layers) == ["communes", "secteurs_collecte", "communes_points"]
    assert layers["communes"].bbox == pytest.approx((5.40, 44.17, 7.04, 45.11), abs=0.01)


@pytest.mark.parametrize("page_size", [500, 20])
async def test_every_commune_across_pages_same_as_the_file(http: HttpClient, url: str, page_size: int) -> None:
    batch = await OGCAPIProvider(http, url, page_size=page_size).features(LayerQuery("communes"))

    assert batch.number_matched == len(COMMUNES) == 161
    assert [f.id for f in batch.features] == [f["properties"]["insee"] for f in COMMUNES]
    for found, source in zip(batch.features, COMMUNES, strict=True):
        assert {k: found.properties[k] for k in source["properties"]} == source["properties"]
        # MapServer's OGC API may send the parts of a MultiPolygon in another order.
        assert shapely.normalize(found.geometry).equals_exact(shapely.normalize(shape(source)), 1e-9)


class CountingClient(HttpClient):
    """Records the URL of each GET."""

    def __init__(self) -> None:
        super().__init__("test/peers/ogcapi-counting", HttpOptions(retries=0, total_timeout=60))
        self.urls: list[str] = []

    async def get(self, url: str, **kwargs: Any) -> Response:
        self.urls.append(url)
        return await super().get(url, **kwargs)


async def test_next_links_go_past_the_server_s_fifty_items_per_page(url: str) -> None:
    client = CountingClient()
    try:
        batch = await OGCAPIProvider(client, url, page_size=500).features(LayerQuery("communes_points"))
    finally:
        await client.close()

    assert len(batch.features) == 161
    assert len(client.urls) == 4  # 50 + 50 + 50 + 11: the limit of 500 was capped silently
    assert all("offset=" in u for u in client.urls[1:])


async def test_the_sector_and_commune_of_a_point(http: HttpClient, url: str) -> None:
    provider = OGCAPIProvider(http, url)
    point = shapely.Point(*GAP_CENTRE)

    sectors = await provider.features(LayerQuery("secteurs_collecte", point=GAP_CENTRE))
    communes = await provider.features(LayerQuery("communes", point=GAP_CENTRE))

    assert (
        [f.id for f in sectors.features]
        == [f["properties"]["secteur"] for f in SECTORS if shape(f).covers(point)]
        == ["GAP-1"]
    )
    assert [f.id for f in communes.features] == ["05061"]


async def test_a_box_gives_the_communes_that_intersect_it(http: HttpClient, url: str) -> None:
    box = (6.0, 44.5, 6.2, 44.6)
    expected = [f["properties"]["insee"] for f in COMMUNES if shape(f).intersects(shapely.box(*box))]

    batch = await OGCAPIProvider(http, url).features(LayerQuery("communes", bbox=box))

    assert sorted(f.id for f in batch.features) == sorted(expected)
    assert len(expected) == 17


async def test_a_filter_with_kept_properties(http: HttpClient, url: str) -> None:
    expected = [f["properties"]["insee"] for f in COMMUNES if f["properties"]["code_postal"] == "05000"]

    batch = await OGCAPIProvider(http, url).features(
        LayerQuery("communes", filters={"code_postal": "05000"}, properties=("nom",))
    )

    assert [f.id for f in batch.features] == expected
    assert all(set(f.properties) == {"nom"} for f in batch.features)


async def test_a_misspelt_filter_ignored_by_the_server_matches_nothing(http: HttpClient, url: str) -> None:
    batch = await OGCAPIProvider(http, url).features(LayerQuery("communes_points", filters={"code_insee": "05061"}))

    assert batch.features == []


async def test_limit_stops_early(http: HttpClient, url: str) -> None:
    batch = await OGCAPIProvider(http, url).features(LayerQuery("communes_points", limit=55))

    assert [f.id for f in batch.features] == [f["properties"]["insee"] for f in POINTS[:55]]


async def test_too_many_features(http: HttpClient, url: str) -> None:
    with pytest.raises(TooManyFeatures):
        await OGCAPIProvider(http, url, max_features=100).features(LayerQuery("communes"))


async def test_unknown_collection(http: HttpClient, url: str) -> None:
    with pytest.raises(NotFound, match="collections: communes, secteurs_collecte, communes_points"):
        await OGCAPIProvider(http, url).features(LayerQuery("ecoles"))
