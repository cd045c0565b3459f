"""The ArcGIS REST provider against the simulator (and a few canned answers), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import shapely
from aiohttp import web
from aiohttp.test_utils import TestServer
from pyproj import Transformer
from structlog.testing import capture_logs

from connectors.sig.layers.arcgis import ArcGISProvider, esri_geometry
from connectors.sig.layers.features import FeatureError
from connectors.sig.layers.provider import LayerQuery, TooManyFeatures
from passerelle import NotFound, UpstreamError, WrongParameter
from passerelle.http import HttpClient, HttpOptions, Response
from simulators.arcgis import Service, make_app, points_layer

DATA = Path(__file__).parents[3] / "simulators" / "data"
SERVICES = "/arcgis/rest/services"
# Inside the Centre-ville polygon, outside its hole (the park); in the park.
IN_CENTRE = (6.0820, 44.5620)
IN_PARK = (6.0775, 44.5590)
L93_TO_WGS = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
WM_TO_WGS = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
WGS_TO_WM = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def source(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"arcgis-{name}.geojson").read_text(encoding="utf-8"))["features"]


def iso(text: str | None) -> str | None:
    """The provider's form of a source date (ISO, UTC when it carries no offset)."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


class SpyClient(HttpClient):
    """The real client, remembering the method and the parameters of each call."""

    def __init__(self) -> None:
        super().__init__("arcgis-test", HttpOptions(retries=0, breaker_threshold=0))
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.calls.append((method, url, dict(kwargs.get("params") or kwargs.get("data") or {})))
        return await super().request(method, url, **kwargs)

    def queries(self) -> list[dict[str, str]]:
        return [params for _, url, params in self.calls if url.endswith("/query")]


@pytest.fixture
async def http() -> AsyncIterator[SpyClient]:
    client = SpyClient()
    yield client
    await client.close()


Serve = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application | None = None, **options: Any) -> TestServer:
        server = TestServer(app if app is not None else make_app(**options), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def arcgis(serve: Serve) -> TestServer:
    return await serve()


def provider(
    server: TestServer, http: HttpClient, service: str = "Urbanisme/FeatureServer", **kw: Any
) -> ArcGISProvider:
    return ArcGISProvider(http, str(server.make_url(f"{SERVICES}/{service}")), **kw)


async def set_mode(http: HttpClient, server: TestServer, name: str) -> None:
    response = await http.post(str(server.make_url("/_simulator/mode")), json={"mode": name})
    assert response.status == 200


async def stats(http: HttpClient, server: TestServer) -> dict[str, Any]:
    return (await http.get(str(server.make_url("/_simulator/stats")))).json()


# -- construction -------------------------------------------------------------------------------------------------


def test_service_url_is_checked_and_normalised() -> None:
    http = HttpClient("unused")
    base = "https://sig.example.org/arcgis/rest/services"
    assert ArcGISProvider(http, f"{base}/Urbanisme/FeatureServer/").service_url == f"{base}/Urbanisme/FeatureServer"
    assert ArcGISProvider(http, f"{base}/Dossier/Voirie/MapServer").service_url == f"{base}/Dossier/Voirie/MapServer"
    proxied = "https://sig.example.org/carto/Collecte/MapServer"
    assert ArcGISProvider(http, proxied).service_url == proxied
    with pytest.raises(ValueError, match="names a layer"):
        ArcGISProvider(http, f"{base}/Urbanisme/FeatureServer/0")
    with pytest.raises(ValueError, match="FeatureServer or /rest/services/<service>/MapServer"):
        ArcGISProvider(http, f"{base}/Urbanisme/ImageServer")
    with pytest.raises(ValueError, match="FeatureServer"):
        ArcGISProvider(http, "https://sig.example.org/geoserver/wfs")
    with pytest.raises(ValueError, match="no query string") as refused:
        ArcGISProvider(http, f"{base}/Urbanisme/FeatureServer?token=s3cret")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ValueError, match="http"):
        ArcGISProvider(http, "ftp://sig.example.org/arcgis/rest/services/Urbanisme/FeatureServer")
    with pytest.raises(ValueError, match="page_size"):
        ArcGISProvider(http, f"{base}/Urbanisme/FeatureServer", page_size=0)


# -- layers -------------------------------------------------------------------------------------------------------


async def test_layers_of_a_lambert93_feature_server(arcgis: TestServer, http: SpyClient) -> None:
    layers = await provider(arcgis, http).layers()
    assert [(layer.name, layer.title, layer.geometry_type) for layer in layers] == [
        ("0", "Quartiers", "Polygon"),
        ("1", "Equipements", "Point"),
    ]
    assert layers[0].fields == (
        "OBJECTID",
        "NOM",
        "CODE_QUARTIER",
        "CODE_INSEE",
        "POPULATION",
        "SURFACE_HA",
        "DATE_MAJ",
    )
    assert layers[1].fields[:3] == ("OBJECTID", "NOM", "TYPE")
    # The Lambert-93 extent, reprojected (as pyproj does it, densified): it holds every feature.
    for layer, name in zip(layers, ("quartiers", "equipements"), strict=True):
        url = str(arcgis.make_url(f"{SERVICES}/Urbanisme/FeatureServer/{layer.name}"))
        extent = (await http.get(url, params={"f": "json"})).json()["extent"]
        expected = L93_TO_WGS.transform_bounds(extent["xmin"], extent["ymin"], extent["xmax"], extent["ymax"])
        assert layer.bbox == pytest.approx(expected, abs=1e-7)
        data = shapely.GeometryCollection([shapely.geometry.shape(f["geometry"]) for f in source(name)])
        assert shapely.box(*layer.bbox).covers(data)
    # Layer descriptions were fetched once each, and are reused by queries.
    await provider_features(arcgis, http)


async def provider_features(server: TestServer, http: SpyClient) -> None:
    arcgis = provider(server, http)
    await arcgis.layers()
    before = len(http.calls)
    await arcgis.features(LayerQuery(layer="1"))
    await arcgis.features(LayerQuery(layer="Equipements"))
    assert all(url.endswith("/query") for _, url, _ in http.calls[before:])


async def test_layers_of_a_web_mercator_map_server(arcgis: TestServer, http: SpyClient) -> None:
    layers = await provider(arcgis, http, "Voirie/MapServer").layers()
    assert [(layer.name, layer.title, layer.geometry_type) for layer in layers] == [
        ("0", "Troncons", "LineString"),
        ("1", "Points d'apport volontaire", "Point"),
    ]
    # The extent is reported as 102100: it is Web Mercator (3857), compared with pyproj's own reprojection.
    metadata = (await http.get(str(arcgis.make_url(f"{SERVICES}/Voirie/MapServer/0")), params={"f": "json"})).json()
    extent = metadata["extent"]
    assert extent["spatialReference"]["wkid"] == 102100
    expected = WM_TO_WGS.transform_bounds(extent["xmin"], extent["ymin"], extent["xmax"], extent["ymax"])
    assert layers[0].bbox == pytest.approx(expected, abs=1e-7)


# -- fetching -----------------------------------------------------------------------------------------------------


async def test_full_fetch_across_pages_equals_the_data(arcgis: TestServer, http: SpyClient) -> None:
    batch = await provider(arcgis, http, page_size=5).features(LayerQuery(layer="1"))
    expected = source("equipements")
    assert [feature.id for feature in batch.features] == [str(n) for n in range(1, 13)]
    assert batch.number_matched == 12
    for feature, original in zip(batch.features, expected, strict=True):
        props = original["properties"]
        assert feature.properties == {
            "OBJECTID": int(feature.id),
            **props,
            "DATE_OUVERTURE": iso(props["DATE_OUVERTURE"]),
        }
        assert feature.geometry.geom_type == "Point"
        assert list(feature.geometry.coords[0]) == pytest.approx(original["geometry"]["coordinates"], abs=1e-9)
    pages = [params for params in http.queries() if "resultOffset" in params]
    assert [(p["resultOffset"], p["resultRecordCount"]) for p in pages] == [("0", "5"), ("5", "5"), ("10", "5")]
    assert {p["orderByFields"] for p in pages} == {"OBJECTID ASC"}
    assert {(p["outSR"], p["f"], p["returnGeometry"], p["outFields"], p["where"]) for p in pages} == {
        ("4326", "json", "true", "*", "1=1")
    }


async def test_polygons_keep_their_holes(arcgis: TestServer, http: SpyClient) -> None:
    batch = await provider(arcgis, http).features(LayerQuery(layer="Quartiers"))
    for feature, original in zip(batch.features, source("quartiers"), strict=True):
        expected = shapely.geometry.shape(original["geometry"])
        assert feature.geometry.geom_type == "Polygon"
        assert len(feature.geometry.interiors) == len(expected.interiors)
        assert feature.geometry.symmetric_difference(expected).area < 1e-12
    assert len(batch.features[0].geometry.interiors) == 1


async def test_short_pages_advance_by_what_came_back(serve: Serve, http: SpyClient) -> None:
    points = [(6.0 + i * 0.001, 44.5, {"RANK": i}) for i in range(25)]
    layer = points_layer(0, "Big", points, fields={"OBJECTID": "esriFieldTypeOID", "RANK": "esriFieldTypeInteger"})
    server = await serve(make_app({"Big": Service("Big", "FeatureServer", [layer])}, max_record_count=10))
    await set_mode(http, server, "short_pages")
    batch = await provider(server, http, "Big/FeatureServer").features(LayerQuery(layer="0"))
    assert [feature.id for feature in batch.features] == [str(n) for n in range(1, 26)]
    offsets = [int(p["resultOffset"]) for p in http.queries() if "resultOffset" in p]
    assert offsets == [0, 5, 10, 15, 20]  # pages of 10 asked, 5 answered


async def test_layer_without_pagination_is_paged_by_object_ids(arcgis: TestServer, http: SpyClient) -> None:
    arcgis_provider = provider(arcgis, http, "Voirie/MapServer")
    batch = await arcgis_provider.features(LayerQuery(layer="1"))
    assert [feature.id for feature in batch.features] == [str(n) for n in range(1, 9)]
    assert [f.properties["ADRESSE"] for f in batch.features] == [f"{n} rue imaginaire" for n in range(10, 18)]
    queries = http.queries()
    assert queries[0]["returnIdsOnly"] == "true"
    assert [q["objectIds"] for q in queries[1:]] == ["1,2,3,4,5", "6,7,8"]  # maxRecordCount 5
    assert all("resultOffset" not in q for q in queries)

    http.calls.clear()
    verre = await arcgis_provider.features(LayerQuery(layer="1", filters={"FLUX": "verre"}))
    assert [feature.id for feature in verre.features] == ["1", "4", "7"]
    limited = await arcgis_provider.features(LayerQuery(layer="1", limit=6))
    assert len(limited.features) == 6 and limited.number_matched is None


async def test_limit(arcgis: TestServer, http: SpyClient) -> None:
    batch = await provider(arcgis, http, page_size=5).features(LayerQuery(layer="1", limit=7))
    assert [feature.id for feature in batch.features] == [str(n) for n in range(1, 8)]
    assert batch.number_matched is None
    assert [p["resultRecordCount"] for p in http.queries()] == ["5", "2"]
    assert (await provider(arcgis, http).features(LayerQuery(layer="1", limit=0))).features == []


async def test_web_mercator_layer_is_answered_in_wgs84(arcgis: TestServer, http: SpyClient) -> None:
    batch = await provider(arcgis, http, "Voirie/MapServer").features(LayerQuery(layer="Troncons"))
    assert [feature.id for feature in batch.features] == ["1", "2", "3", "4"]
    for feature, original in zip(batch.features, source("troncons"), strict=True):
        assert feature.geometry.geom_type == "LineString"
        got = shapely.get_coordinates(feature.geometry)
        assert got.ravel().tolist() == pytest.approx(
            [value for point in original["geometry"]["coordinates"] for value in point], abs=1e-9
        )


# -- filters, properties, geometry ---------------------------------------------------------------------------------


async def test_text_filter_with_a_quote(arcgis: TestServer, http: SpyClient) -> None:
    batch = await provider(arcgis, http).features(LayerQuery(layer="1", filters={"NOM": "Crèche l'Île aux enfants"}))
    assert [feature.id for feature in batch.features] == ["7"]
    assert http.queries()[-1]["where"] == "NOM = 'Crèche l''Île aux enfants'"


async def test_numeric_filters_are_numbers(arcgis: TestServer, http: SpyClient) -> None:
    layer = provider(arcgis, http)
    assert [f.id for f in (await layer.features(LayerQuery(layer="1", filters={"CAPACITE": "230"}))).features] == ["3"]
    assert http.queries()[-1]["where"] == "CAPACITE = 230"
    both = LayerQuery(layer="1", filters={"ACCESSIBLE": "0", "type": "ecole"})  # field names are case-insensitive
    assert [f.id for f in (await layer.features(both)).features] == ["4"]
    assert http.queries()[-1]["where"] == "ACCESSIBLE = 0 AND TYPE = 'ecole'"
    assert [f.id for f in (await layer.features(LayerQuery(layer="1", filters={"NOTE": "4.5"}))).features] == ["1"]
    # Text that is no number matches no number, without asking the server.
    count = len(http.calls)
    assert (await layer.features(LayerQuery(layer="1", filters={"CAPACITE": "1; DROP TABLE"}))).features == []
    assert (await layer.features(LayerQuery(layer="1", filters={"CAPACITE": "1e999999999"}))).features == []
    assert len(http.calls) == count
    assert [f.id for f in (await layer.features(LayerQuery(layer="1", filters={"CAPACITE": "2.3e2"}))).features] == [
        "3"
    ]
    assert http.queries()[-1]["where"] == "CAPACITE = 230"


async def test_date_filter_compares_the_iso_text(arcgis: TestServer, http: SpyClient) -> None:
    wanted = LayerQuery(layer="1", filters={"DATE_OUVERTURE": "1988-06-20T09:00:00+00:00"})
    batch = await provider(arcgis, http).features(wanted)
    assert [feature.id for feature in batch.features] == ["5"]


async def test_unknown_field_is_a_wrong_parameter(arcgis: TestServer, http: SpyClient) -> None:
    layer = provider(arcgis, http)
    with pytest.raises(WrongParameter, match="no such field; its fields: OBJECTID, NOM"):
        await layer.features(LayerQuery(layer="1", filters={"FOO": "x"}))
    with pytest.raises(WrongParameter, match="property 'FOO'"):
        await layer.features(LayerQuery(layer="1", properties=("NOM", "FOO")))


async def test_kept_properties(arcgis: TestServer, http: SpyClient) -> None:
    query = LayerQuery(layer="1", properties=("NOM", "capacite"), filters={"TYPE": "piscine"})
    batch = await provider(arcgis, http).features(query)
    assert [(f.id, f.properties) for f in batch.features] == [("5", {"NOM": "Piscine municipale", "capacite": 600})]
    assert http.queries()[-1]["outFields"] == "OBJECTID,NOM,CAPACITE,TYPE"


async def test_dates_are_iso_strings(arcgis: TestServer, http: SpyClient) -> None:
    layer = provider(arcgis, http)
    facilities = {f.id: f.properties for f in (await layer.features(LayerQuery(layer="1"))).features}
    assert facilities["1"]["DATE_OUVERTURE"] == "1910-05-01T00:00:00+00:00"  # before 1970: negative milliseconds
    assert facilities["5"]["DATE_OUVERTURE"] == "1988-06-20T09:00:00+00:00"
    assert facilities["11"]["DATE_OUVERTURE"] is None
    quarters = {f.id: f.properties for f in (await layer.features(LayerQuery(layer="0"))).features}
    assert quarters["4"]["DATE_MAJ"] == "2024-01-08T00:00:00+00:00"
    assert quarters["3"]["POPULATION"] is None and quarters["1"]["CODE_INSEE"] == "05061"


async def test_bbox(arcgis: TestServer, http: SpyClient) -> None:
    box = (6.07, 44.55, 6.085, 44.565)
    batch = await provider(arcgis, http).features(LayerQuery(layer="1", bbox=box))
    expected = [
        str(number)
        for number, feature in enumerate(source("equipements"), start=1)
        if shapely.box(*box).intersects(shapely.geometry.shape(feature["geometry"]))
    ]
    assert expected and [feature.id for feature in batch.features] == expected
    sent = http.queries()[-1]
    assert (sent["geometry"], sent["geometryType"], sent["inSR"], sent["spatialRel"]) == (
        "6.07,44.55,6.085,44.565",
        "esriGeometryEnvelope",
        "4326",
        "esriSpatialRelIntersects",
    )


async def test_point_in_a_polygon_and_in_its_hole(arcgis: TestServer, http: SpyClient) -> None:
    layer = provider(arcgis, http)
    inside = await layer.features(LayerQuery(layer="Quartiers", point=IN_CENTRE))
    assert [feature.properties["NOM"] for feature in inside.features] == ["Centre-ville"]
    sent = http.queries()[-1]
    assert (sent["geometry"], sent["geometryType"], sent["inSR"]) == ("6.082,44.562", "esriGeometryPoint", "4326")
    assert (await layer.features(LayerQuery(layer="Quartiers", point=IN_PARK))).features == []
    # A point and a box: the point goes to the server, the box is checked here.
    far_box = (6.0, 44.0, 6.01, 44.01)
    assert (await layer.features(LayerQuery(layer="0", point=IN_CENTRE, bbox=far_box))).features == []


# -- answers checked on the hub's side (canned server) --------------------------------------------------------------


def canned(layer: dict[str, Any], answer: Callable[[dict[str, str]], Any]) -> web.Application:
    """A server answering the service, layer 0's description and its queries (answer(params) -> body or Response)."""
    service = {"layers": [{"id": 0, "name": layer["name"]}], "tables": [{"id": 1, "name": "Table"}]}

    async def handle(request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        tail = request.match_info["tail"]
        body = service if tail == "" else layer if tail == "/0" else answer(params)
        if isinstance(body, web.StreamResponse):
            return body
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", SERVICES + "/Canned/FeatureServer{tail:.*}", handle)
    return app


PARCELS = {
    "id": 0,
    "name": "Parcelles",
    "geometryType": "esriGeometryPolygon",
    "objectIdField": "FID",
    "maxRecordCount": 100,
    "advancedQueryCapabilities": {"supportsPagination": True, "supportsOrderBy": True},
    "fields": [{"name": "FID", "type": "esriFieldTypeOID"}, {"name": "NOM", "type": "esriFieldTypeString"}],
    "extent": {"xmin": "NaN", "ymin": "NaN", "xmax": "NaN", "ymax": "NaN", "spatialReference": {"wkid": 4326}},
}
SQUARE_WM = [list(WGS_TO_WM.transform(x, y)) for x, y in [(6, 44), (6, 45), (7, 45), (7, 44), (6, 44)]]


async def test_canned_answers_are_checked(serve: Serve, http: SpyClient) -> None:
    def answer(params: dict[str, str]) -> Any:
        # A lenient server: it ignores outSR (Web Mercator answered), the point, and compares text without case.
        features = [
            {"attributes": {"FID": 1, "NOM": "gap"}, "geometry": {"rings": [SQUARE_WM]}},
            {"attributes": {"FID": 2, "NOM": "GAP"}, "geometry": {"rings": [SQUARE_WM]}},
            {"attributes": {"FID": 3, "NOM": "GAP"}, "geometry": None},
        ]
        return {
            "objectIdFieldName": "FID",
            "spatialReference": {"wkid": 102100, "latestWkid": 3857},
            "features": features,
        }

    server = await serve(canned(PARCELS, answer))
    layer = provider(server, http, "Canned/FeatureServer")
    [info] = await layer.layers()  # the table is not a layer
    assert info.bbox is None  # an empty layer's extent is NaN
    batch = await layer.features(LayerQuery(layer="Parcelles", filters={"NOM": "GAP"}))
    assert [feature.id for feature in batch.features] == ["2"]  # exact text; no geometry: left out
    square = batch.features[0].geometry
    # Reprojected from the spatialReference the answer states, with the same result as pyproj.
    expected = [value for x, y in SQUARE_WM for value in WM_TO_WGS.transform(x, y)]
    assert sorted(shapely.get_coordinates(square).ravel().tolist()) == pytest.approx(sorted(expected), abs=1e-9)
    assert (await layer.features(LayerQuery(layer="0", point=(6.5, 44.5)))).features[0].id == "1"
    assert (await layer.features(LayerQuery(layer="0", point=(8.0, 44.5)))).features == []


async def test_invalid_field_error_body(serve: Serve, http: SpyClient) -> None:
    body = {"error": {"code": 400, "message": "Unable to complete operation.", "details": ["Invalid field: FOO"]}}
    server = await serve(canned(PARCELS, lambda params: body))
    layer = provider(server, http, "Canned/FeatureServer")
    with pytest.raises(UpstreamError) as refused:
        await layer.features(LayerQuery(layer="0"))
    assert (
        refused.value.message
        == "the ArcGIS server refused the query: Unable to complete operation. (Invalid field: FOO)"
    )
    assert refused.value.status == 502 and refused.value.data["code"] == 400
    # The layer's description is read again after a refusal: its schema may have changed.
    with pytest.raises(UpstreamError):
        await layer.features(LayerQuery(layer="0"))
    assert [url.endswith("/0") for _, url, _ in http.calls].count(True) == 2


async def test_a_field_added_since_the_description_was_read(serve: Serve, http: SpyClient) -> None:
    description = json.loads(json.dumps(PARCELS))
    feature = {"attributes": {"FID": 1, "NOM": "Gap", "CODE": "A"}, "geometry": {"rings": [SQUARE_WM]}}
    server = await serve(
        canned(description, lambda params: {"features": [feature], "spatialReference": {"wkid": 102100}})
    )
    layer = provider(server, http, "Canned/FeatureServer")
    assert len((await layer.features(LayerQuery(layer="0"))).features) == 1
    description["fields"].append({"name": "CODE", "type": "esriFieldTypeString"})
    batch = await layer.features(LayerQuery(layer="0", filters={"CODE": "A"}))
    assert [f.id for f in batch.features] == ["1"]
    with pytest.raises(WrongParameter, match="no such field"):
        await layer.features(LayerQuery(layer="0", filters={"COLOR": "red"}))


async def test_html_answer(serve: Serve, http: SpyClient) -> None:
    # A portal's sign-in page, or a reverse proxy's, where the service was expected.
    app = web.Application()
    app.router.add_get(SERVICES + "/Portal/FeatureServer", _html)
    server = await serve(app)
    with pytest.raises(UpstreamError, match=r"with an HTML page \(HTTP 200\): is .* a FeatureServer or MapServer"):
        await provider(server, http, "Portal/FeatureServer").layers()


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")


async def test_features_without_pages_progress_are_an_error(serve: Serve, http: SpyClient) -> None:
    server = await serve(canned(PARCELS, lambda params: {"features": [], "exceededTransferLimit": True}))
    with pytest.raises(UpstreamError, match="remain past 0 but returned none"):
        await provider(server, http, "Canned/FeatureServer").features(LayerQuery(layer="0"))


# -- errors -------------------------------------------------------------------------------------------------------


async def test_token_required_invalid_and_valid(serve: Serve, http: SpyClient) -> None:
    server = await serve(token="s3cret")
    with pytest.raises(UpstreamError, match=r"requires a token \(Token Required\): set the 'token' configuration"):
        await provider(server, http).layers()
    with pytest.raises(UpstreamError, match=r"refused the token \(Invalid Token\).*'token' configuration"):
        await provider(server, http, token="guess").features(LayerQuery(layer="0"))
    with capture_logs() as logs:
        layer = provider(server, http, token="s3cret", page_size=2)
        assert len(await layer.layers()) == 2
        assert len((await layer.features(LayerQuery(layer="0"))).features) == 4
    assert logs and "s3cret" not in repr(logs)
    assert all(params.get("token") == "s3cret" for _, _, params in http.calls[-5:])


async def test_error200_mode(arcgis: TestServer, http: SpyClient) -> None:
    await set_mode(http, arcgis, "error200")
    with pytest.raises(UpstreamError) as refused:
        await provider(arcgis, http).features(LayerQuery(layer="0"))
    assert refused.value.message == "the ArcGIS server refused the query: Error performing query operation"


async def test_http_500_comes_from_the_outbound_client(arcgis: TestServer, http: SpyClient) -> None:
    await set_mode(http, arcgis, "500")
    with pytest.raises(UpstreamError, match="answered HTTP 500"):
        await provider(arcgis, http).layers()


async def test_too_many_features(arcgis: TestServer, http: SpyClient) -> None:
    with pytest.raises(TooManyFeatures, match="12 features match, more than 10; narrow the query"):
        await provider(arcgis, http, page_size=5, max_features=10).features(LayerQuery(layer="1"))
    # Refused after the first page, by a count, not after fetching everything.
    assert [("resultOffset" in q, q.get("returnCountOnly")) for q in http.queries()] == [(True, None), (False, "true")]
    limited = await provider(arcgis, http, page_size=5, max_features=10).features(LayerQuery(layer="1", limit=4))
    assert len(limited.features) == 4
    with pytest.raises(TooManyFeatures, match="8 features match, more than 5"):
        await provider(arcgis, http, "Voirie/MapServer", max_features=5).features(LayerQuery(layer="1"))


async def test_layer_by_name(arcgis: TestServer, http: SpyClient) -> None:
    layer = provider(arcgis, http, "Voirie/MapServer")
    assert len((await layer.features(LayerQuery(layer="Points d'apport volontaire"))).features) == 8
    assert len((await layer.features(LayerQuery(layer="troncons"))).features) == 4
    with pytest.raises(NotFound, match=r"no layer 'Nope' .* its layers: 0 \(Troncons\), 1 \(Points"):
        await layer.features(LayerQuery(layer="Nope"))
    with pytest.raises(NotFound, match="no layer '7'"):
        await layer.features(LayerQuery(layer="7"))


async def test_long_queries_are_posted(arcgis: TestServer, http: SpyClient) -> None:
    long_name = "x" * 2500
    batch = await provider(arcgis, http).features(LayerQuery(layer="1", filters={"NOM": long_name}))
    assert batch.features == []
    method, _, params = http.calls[-1]
    assert method == "POST" and params["where"] == f"NOM = '{long_name}'"


# -- Esri geometries ----------------------------------------------------------------------------------------------


def test_esri_polygons_holes_go_to_their_outer_ring() -> None:
    big = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]  # clockwise: outer
    small = [[20, 0], [20, 5], [25, 5], [25, 0], [20, 0]]  # clockwise: outer
    hole = [[21, 1], [24, 1], [24, 4], [21, 4], [21, 1]]  # counter-clockwise: hole, of the second outer ring
    geometry = esri_geometry({"rings": [big, small, hole]})
    assert geometry is not None and geometry.geom_type == "MultiPolygon"
    first, second = geometry.geoms
    assert len(first.interiors) == 0 and len(second.interiors) == 1
    assert second.area == 25 - 9
    # Rings all counter-clockwise (a writer ignoring Esri's orientation): outer rings, not holes.
    reversed_only = esri_geometry({"rings": [list(reversed(big))]})
    assert reversed_only is not None and reversed_only.area == 100
    # A hole inside nothing is an outer ring.
    orphan = esri_geometry({"rings": [big, [[30, 0], [35, 0], [35, 5], [30, 5], [30, 0]]]})
    assert orphan is not None and orphan.geom_type == "MultiPolygon" and orphan.area == 125


def test_esri_other_geometries() -> None:
    assert esri_geometry({"x": 6.1, "y": 44.5, "z": 700}).equals(shapely.Point(6.1, 44.5))
    assert esri_geometry({"x": "NaN", "y": "NaN"}) is None
    assert esri_geometry(None) is None and esri_geometry({}) is None
    assert esri_geometry({"points": [[1, 2], [3, 4]]}).geom_type == "MultiPoint"
    assert esri_geometry({"paths": [[[0, 0], [1, 1]]]}).geom_type == "LineString"
    assert esri_geometry({"paths": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]}).geom_type == "MultiLineString"
    assert esri_geometry({"xmin": 0, "ymin": 0, "xmax": 1, "ymax": 2}).area == 2
    with pytest.raises(FeatureError, match="true curves"):
        esri_geometry({"curveRings": [[[0, 0], {"c": [[1, 1], [0.5, 0.5]]}]]})
    with pytest.raises(FeatureError, match="cannot be read"):
        esri_geometry({"paths": [[[0, "east"]]]})
