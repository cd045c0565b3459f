"""WFSProvider against the real MapServer 8 of scripts/with-gis.sh, in WFS 2.0.0 and 1.1.0,
compared with the GeoJSON files it serves (demo/data/gis/).

MapServer caps COUNT at 50 silently and, without ``wfs_compute_number_matched``, says
``numberMatched`` on the last page only: the 161 communes take four pages either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import shapely

from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from connectors.sig.layers.wfs import WFSProvider
from passerelle import NotFound, UpstreamError
from passerelle.http import HttpClient, HttpOptions, Response

WFS_URL = os.environ.get("PASSERELLE_TEST_WFS_URL", "")
COUNTED_URL = os.environ.get("PASSERELLE_TEST_WFS_COUNTED_URL", "")
DATA = Path(__file__).parents[2] / "demo" / "data" / "gis"
GAP_CENTRE = (6.0786, 44.5594)  # place Jean Marcellin, lon, lat
VERSIONS = ["2.0.0", "1.1.0"]

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


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test/peers/wfs", HttpOptions(retries=0, total_timeout=60))
    yield client
    await client.close()


def wfs(http: HttpClient, version: str = "2.0.0", url: str = "", **kwargs: Any) -> WFSProvider:
    return WFSProvider(http, url or WFS_URL, version=version, **kwargs)


@pytest.mark.parametrize("version", VERSIONS)
async def test_layers_are_the_three_feature_types_with_their_box(http: HttpClient, version: str) -> None:
    layers = {info.name.split(":")[-1]: info for info in await wfs(http, version).layers()}

    assert list(layers) == ["communes", "secteurs_collecte", "communes_points"]
    assert layers["communes"].title == "Communes des Hautes-Alpes (limites approchées)"
    bounds = shapely.union_all([shape(f) for f in COMMUNES]).bounds
    assert layers["communes"].bbox == pytest.approx(bounds, abs=1e-6)


@pytest.mark.parametrize("url", ["plain", "counted"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_every_commune_across_pages_same_as_the_file(http: HttpClient, version: str, url: str) -> None:
    if url == "counted" and not COUNTED_URL:
        pytest.skip("no PASSERELLE_TEST_WFS_COUNTED_URL")
    provider = wfs(http, version, COUNTED_URL if url == "counted" else "", id_property="insee")

    batch = await provider.features(LayerQuery("communes"))

    assert batch.number_matched == len(COMMUNES) == 161
    assert [f.id for f in batch.features] == [f["properties"]["insee"] for f in COMMUNES]
    for found, source in zip(batch.features, COMMUNES, strict=True):
        assert found.properties == source["properties"]
        assert found.geometry.equals_exact(shape(source), 1e-9)


class CountingClient(HttpClient):
    """Records the parameters of each GET."""

    def __init__(self) -> None:
        super().__init__("test/peers/wfs-counting", HttpOptions(retries=0, total_timeout=60))
        self.calls: list[dict[str, str]] = []

    async def get(self, url: str, **kwargs: Any) -> Response:
        self.calls.append(dict(kwargs.get("params") or {}))
        return await super().get(url, **kwargs)


async def test_paging_goes_past_mapserver_s_fifty_features_per_answer() -> None:
    client = CountingClient()
    try:
        batch = await WFSProvider(client, WFS_URL, page_size=500).features(LayerQuery("communes"))
    finally:
        await client.close()

    pages = [(c["COUNT"], c["STARTINDEX"]) for c in client.calls if c.get("REQUEST") == "GetFeature"]
    assert len(batch.features) == 161
    # COUNT follows the advertised CountDefault; the last page says numberMatched, ending the walk.
    assert pages == [("50", "0"), ("50", "50"), ("50", "100"), ("50", "150")]


async def test_a_small_page_size_walks_the_same_features(http: HttpClient) -> None:
    batch = await wfs(http, page_size=20, id_property="insee").features(LayerQuery("communes_points"))

    assert [f.id for f in batch.features] == [f["properties"]["insee"] for f in POINTS]


async def test_without_an_id_property_ids_are_positions(http: HttpClient) -> None:
    batch = await wfs(http).features(LayerQuery("ms:communes_points", limit=3))

    assert [f.id for f in batch.features] == ["communes_points.1", "communes_points.2", "communes_points.3"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_sector_and_commune_of_a_point(http: HttpClient, version: str) -> None:
    provider = wfs(http, version, id_property="secteur")
    point = shapely.Point(*GAP_CENTRE)

    sectors = await provider.features(LayerQuery("secteurs_collecte", point=GAP_CENTRE))
    communes = await wfs(http, version, id_property="insee").features(LayerQuery("communes", point=GAP_CENTRE))

    assert (
        [f.id for f in sectors.features]
        == [f["properties"]["secteur"] for f in SECTORS if shape(f).covers(point)]
        == ["GAP-1"]
    )
    assert sectors.features[0].properties["jour_collecte"] == "lundi et jeudi"
    assert [f.id for f in communes.features] == ["05061"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_box_gives_the_communes_that_intersect_it(http: HttpClient, version: str) -> None:
    box = (6.0, 44.5, 6.2, 44.6)
    expected = [f["properties"]["insee"] for f in COMMUNES if shape(f).intersects(shapely.box(*box))]

    batch = await wfs(http, version, id_property="insee").features(LayerQuery("communes", bbox=box))

    assert [f.id for f in batch.features] == expected
    assert len(expected) == 17


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_filter_with_and_without_a_box(http: HttpClient, version: str) -> None:
    provider = wfs(http, version, id_property="insee")
    box = (6.0, 44.5, 6.1, 44.55)
    everywhere = [f["properties"]["insee"] for f in COMMUNES if f["properties"]["code_postal"] == "05000"]
    in_box = [
        f["properties"]["insee"]
        for f in COMMUNES
        if f["properties"]["code_postal"] == "05000" and shape(f).intersects(shapely.box(*box))
    ]

    filtered = await provider.features(LayerQuery("communes", filters={"code_postal": "05000"}))
    boxed = await provider.features(LayerQuery("communes", filters={"code_postal": "05000"}, bbox=box))

    assert [f.id for f in filtered.features] == everywhere
    assert [f.id for f in boxed.features] == in_box
    assert 0 < len(in_box) < len(everywhere)


async def test_kept_properties(http: HttpClient) -> None:
    query = LayerQuery("communes", filters={"insee": "05061"}, properties=("nom", "population"))

    batch = await wfs(http, id_property="insee").features(query)

    assert [(f.id, f.properties) for f in batch.features] == [("05061", {"nom": "Gap", "population": 41293})]
    assert batch.features[0].geometry.equals_exact(
        shape(COMMUNES[[c["properties"]["insee"] for c in COMMUNES].index("05061")]), 1e-9
    )


async def test_limit_stops_early(http: HttpClient) -> None:
    batch = await wfs(http, id_property="insee").features(LayerQuery("communes", limit=55))

    assert [f.id for f in batch.features] == [f["properties"]["insee"] for f in COMMUNES[:55]]


async def test_too_many_features(http: HttpClient) -> None:
    with pytest.raises(TooManyFeatures):
        await wfs(http, max_features=100).features(LayerQuery("communes"))


async def test_lambert93_answers_are_reprojected(http: HttpClient) -> None:
    batch = await wfs(http, crs=2154, id_property="insee").features(LayerQuery("communes_points", point=None, limit=5))

    for found, source in zip(batch.features, POINTS[:5], strict=True):
        assert found.id == source["properties"]["insee"]
        assert found.geometry.coords[0] == pytest.approx(source["geometry"]["coordinates"], abs=1e-6)


async def test_unknown_layer(http: HttpClient) -> None:
    with pytest.raises(NotFound, match="layers: ms:communes, ms:secteurs_collecte, ms:communes_points"):
        await wfs(http).features(LayerQuery("ecoles"))


async def test_a_filter_on_an_unknown_property_quotes_the_exception_report(http: HttpClient) -> None:
    with pytest.raises(UpstreamError, match=r"refused the GetFeature request: InvalidParameterValue \(filter\)"):
        await wfs(http).features(LayerQuery("communes", filters={"code": "1"}))


async def test_an_unknown_map_alias_is_an_html_page(http: HttpClient) -> None:
    url = WFS_URL.split("?")[0] + "?map=NOPE"

    with pytest.raises(UpstreamError, match="an HTML page to the GetCapabilities request"):
        await wfs(http, url=url).layers()
