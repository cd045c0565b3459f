"""The Géoplateforme simulator speaks the wire format of protocols.md §1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pyproj import Transformer

from simulators.geoplateforme import Address, load_csv, make_app
from simulators.geoplateforme.search import distance_m

DATA = Path(__file__).parent / "data" / "addresses-sample.csv"
ROOT = Path(__file__).parent.parent.parent
L93_TO_WGS = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
Q_RULE = "q: must contain between 3 and 200 chars and start with a number or a letter"


@pytest.fixture(scope="module")
def addresses() -> list[Address]:
    return load_csv(DATA)


async def _client(app: Any) -> TestClient:
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(addresses: list[Address]) -> AsyncIterator[TestClient]:
    client = await _client(make_app(addresses))
    yield client
    await client.close()


async def get(client: TestClient, path: str, **params: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(path, params=params)
    return response.status, await response.json()


def test_sample_loads_with_codes_as_strings(addresses: list[Address]) -> None:
    assert len(addresses) > 300
    hautes_alpes = [a for a in addresses if a.code_insee == "05068"]
    assert hautes_alpes and hautes_alpes[0].code_postal == "05130"


async def test_search_answers_geocodejson(client: TestClient) -> None:
    status, body = await get(client, "/search/", q="140 rue de rivoli paris", limit="3")
    assert status == 200
    assert body["type"] == "FeatureCollection"
    assert "version" not in body
    assert (body["attribution"], body["licence"], body["query"], body["limit"]) == (
        "BAN",
        "ETALAB-2.0",
        "140 rue de rivoli paris",
        3,
    )
    assert "filters" not in body and "center" not in body
    first = body["features"][0]
    assert first["type"] == "Feature" and first["geometry"]["type"] == "Point"
    props = first["properties"]
    assert props["label"] == "140 Rue de Rivoli 75001 Paris"
    assert props["id"] == "75101_8249_00140"
    assert props["name"] == "140 Rue de Rivoli"
    assert props["housenumber"] == "140"
    assert (props["street"], props["city"], props["district"]) == ("Rue de Rivoli", "Paris", "Paris 1er Arrondissement")
    assert (props["postcode"], props["citycode"]) == ("75001", "75101")
    assert props["context"] == "75, Paris, Île-de-France"
    assert (props["type"], props["_type"]) == ("housenumber", "address")
    assert isinstance(props["importance"], float)


async def test_search_and_search_slash_are_the_same(client: TestClient) -> None:
    assert await get(client, "/search", q="place vendome") == await get(client, "/search/", q="place vendome")


async def test_coordinates_are_lon_lat_and_xy_is_lambert_93(client: TestClient, addresses: list[Address]) -> None:
    _, body = await get(client, "/search", q="route du col jarjayes", limit="20")
    assert body["features"]
    by_id = {a.id: a for a in addresses}
    for feature in body["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        props = feature["properties"]
        if props["type"] == "housenumber":
            assert (lon, lat) == (by_id[props["id"]].lon, by_id[props["id"]].lat)
        assert 5 < lon < 7 and 44 < lat < 45  # Hautes-Alpes: swapped axes would fail
        back_lon, back_lat = L93_TO_WGS.transform(props["x"], props["y"])
        assert abs(back_lon - lon) < 1e-6 and abs(back_lat - lat) < 1e-6


async def test_codes_keep_their_leading_zeros(client: TestClient) -> None:
    _, body = await get(client, "/search", q="jarjayes", type="municipality")
    [feature] = body["features"]
    props = feature["properties"]
    assert (props["citycode"], props["postcode"], props["id"]) == ("05068", "05130", "05068")
    assert props["context"] == "05, Hautes-Alpes, Provence-Alpes-Côte d'Azur"
    assert (props["label"], props["name"], props["type"]) == ("Jarjayes", "Jarjayes", "municipality")


async def test_scores_are_floats_in_0_1_sorted_descending(client: TestClient) -> None:
    _, body = await get(client, "/search", q="12 rue cambon paris", limit="20")
    scores = [f["properties"]["score"] for f in body["features"]]
    assert len(scores) == 20
    assert all(isinstance(s, float) and 0 <= s <= 1 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]
    assert body["features"][0]["properties"]["label"] == "12 Rue Cambon 75001 Paris"


async def test_house_number_suffix(client: TestClient) -> None:
    for q in ("91 bis rue de rivoli", "91b rue de rivoli"):
        _, body = await get(client, "/search", q=q, limit="1")
        props = body["features"][0]["properties"]
        assert (props["housenumber"], props["id"]) == ("91 b", "75101_8249_00091_b"), q


async def test_accents_case_and_punctuation_are_folded(client: TestClient) -> None:
    _, body = await get(client, "/search", q="PLACE VENDÔME, Paris", type="street")
    assert body["features"][0]["properties"]["label"] == "Place Vendôme 75001 Paris"
    _, folded = await get(client, "/search", q="place vendome paris", type="street")
    assert folded["features"] == body["features"]


async def test_street_results_have_no_house_number(client: TestClient) -> None:
    _, body = await get(client, "/search", q="rue de rivoli", type="street")
    props = body["features"][0]["properties"]
    assert props["type"] == "street" and "housenumber" not in props
    assert (props["name"], props["street"], props["id"]) == ("Rue de Rivoli", "Rue de Rivoli", "75101_8249")
    assert body["filters"] == {"type": "street"}
    assert all(f["properties"]["type"] == "street" for f in body["features"])


async def test_autocomplete_completes_the_last_word_only_when_asked(client: TestClient) -> None:
    _, typing = await get(client, "/search", q="place vend", type="street")
    assert typing["features"][0]["properties"]["name"] == "Place Vendôme"
    _, exact = await get(client, "/search", q="vendo", autocomplete="0")
    assert exact["features"] == []
    _, prefix = await get(client, "/search", q="vendo", autocomplete="yes", type="street")
    assert prefix["features"][0]["properties"]["name"] == "Place Vendôme"
    _, last = await get(client, "/search", q="paris vendo", type="street")
    _, not_last = await get(client, "/search", q="vendo paris", type="street")
    assert last["features"][0]["properties"]["score"] > not_last["features"][0]["properties"]["score"]


async def test_postcode_and_citycode_filters(client: TestClient) -> None:
    _, body = await get(client, "/search", q="rue de la", postcode="05190", limit="20")
    assert body["features"] and body["filters"] == {"postcode": "05190"}
    assert {f["properties"]["postcode"] for f in body["features"]} == {"05190"}
    _, body = await get(client, "/search", q="rue de la", citycode="05068", limit="20")
    assert body["features"] and {f["properties"]["citycode"] for f in body["features"]} == {"05068"}
    _, body = await get(client, "/search", q="rue de rivoli", citycode="2A004")
    assert body["features"] == [] and body["filters"] == {"citycode": "2A004"}


async def test_proximity_breaks_ties(client: TestClient, addresses: list[Address]) -> None:
    far_end = min((a for a in addresses if a.nom_voie == "Rue de Rivoli"), key=lambda a: a.lon)
    _, body = await get(
        client, "/search", q="rue de rivoli", type="housenumber", lon=str(far_end.lon), lat=str(far_end.lat)
    )
    assert body["features"][0]["properties"]["id"] == far_end.id
    assert body["center"] == [far_end.lon, far_end.lat]


async def test_zero_results_is_a_200_with_no_features(client: TestClient) -> None:
    status, body = await get(client, "/search", q="zzzz qqqq")
    assert (status, body["features"]) == (200, [])


async def test_other_indexes_answer_no_features(client: TestClient) -> None:
    status, body = await get(client, "/search", q="rue de rivoli", index="poi")
    assert (status, body["features"]) == (200, [])
    _, body = await get(client, "/search", q="rue de rivoli", index="address,poi")
    assert body["features"]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, ["q: required param"]),
        ({"q": "ab"}, [Q_RULE]),
        ({"q": "x" * 201}, [Q_RULE]),
        ({"q": "-rue de rivoli"}, [Q_RULE]),
        ({"q": " rue de rivoli"}, [Q_RULE]),
        ({"q": "rivoli", "limit": "0"}, ["limit: must be an integer between 1 and 20"]),
        ({"q": "rivoli", "limit": "21"}, ["limit: must be an integer between 1 and 20"]),
        ({"q": "rivoli", "limit": "ten"}, ["limit: must be an integer between 1 and 20"]),
        ({"q": "rivoli", "autocomplete": "maybe"}, ["Unexpected value 'maybe' for param autocomplete"]),
        ({"q": "rivoli", "lat": "48.86"}, ["lon/lat must be present together if defined"]),
        ({"q": "rivoli", "lon": "2.33"}, ["lon/lat must be present together if defined"]),
        ({"q": "rivoli", "lon": "east", "lat": "48.8"}, ["lon: must be a float between -180 and 180"]),
        ({"q": "rivoli", "lon": "2.3", "lat": "91"}, ["lat: must be a float between -90 and 90"]),
        ({"q": "rivoli", "type": "foo"}, ["Unexpected value 'foo' for param type"]),
        ({"q": "rivoli", "postcode": "5130"}, ["postcode: must contain 5 digits"]),
        ({"q": "rivoli", "postcode": "75OO1"}, ["postcode: must contain 5 digits"]),
        ({"q": "rivoli", "citycode": "2C004"}, ["citycode: must be a valid INSEE code (5 chars, 2A/2B for Corsica)"]),
        ({"q": "rivoli", "index": "cadastre"}, ["Unexpected value 'cadastre' for param index"]),
        (
            {"q": "ab", "type": "foo", "lat": "1"},
            [Q_RULE, "lon/lat must be present together if defined", "Unexpected value 'foo' for param type"],
        ),
    ],
)
async def test_search_validation(client: TestClient, params: dict[str, str], detail: list[str]) -> None:
    status, body = await get(client, "/search", **params)
    assert status == 400
    assert body == {"code": 400, "message": "Failed parsing query", "detail": detail}


@pytest.mark.parametrize(
    "params",
    [
        {"q": "abc"},
        {"q": "x" * 200},
        {"q": "Élysée"},
        {"q": "12 rue"},
        {"q": "rue", "limit": "1"},
        {"q": "rue", "limit": "20"},
        {"q": "rue", "citycode": "2B033"},
        {"q": "rue", "autocomplete": "FALSE"},
        {"q": "rue", "lon": "-180", "lat": "90"},
    ],
)
async def test_search_accepts_the_edges(client: TestClient, params: dict[str, str]) -> None:
    status, body = await get(client, "/search", **params)
    assert status == 200, body


async def test_reverse_gives_the_nearest_house_numbers_with_distance(
    client: TestClient, addresses: list[Address]
) -> None:
    target = next(a for a in addresses if a.id == "75101_8249_00140")
    status, body = await get(client, "/reverse/", lon=str(target.lon + 0.0001), lat=str(target.lat))
    assert status == 200
    assert "query" not in body and body["limit"] == 1
    [feature] = body["features"]
    props = feature["properties"]
    assert props["id"] == target.id and props["type"] == "housenumber"
    assert isinstance(props["distance"], int) and 5 <= props["distance"] <= 10  # 0.0001° of longitude ≈ 7.3 m here


async def test_reverse_limit_and_filters(client: TestClient) -> None:
    status, body = await get(client, "/reverse", lon="6.1", lat="44.5", limit="5", citycode="05115")
    assert status == 200 and len(body["features"]) == 5
    assert {f["properties"]["citycode"] for f in body["features"]} == {"05115"}
    distances = [f["properties"]["distance"] for f in body["features"]]
    assert distances == sorted(distances)
    _, body = await get(client, "/reverse", lon="6.1", lat="44.5", type="street")
    assert body["features"][0]["properties"]["type"] == "street"


@pytest.mark.parametrize(
    ("lon", "lat", "citycode"),
    [(2.3385, 48.8907, None), (6.1, 44.5, None), (6.1, 44.5, "75101"), (-61.0, 14.6, None), (-180, -90, "05115")],
)
async def test_reverse_finds_what_a_full_scan_finds(
    client: TestClient, addresses: list[Address], lon: float, lat: float, citycode: str | None
) -> None:
    # Near the data, far from it (Martinique, the antipodes) and with a filter that excludes the nearest cells.
    pool = [a for a in addresses if citycode in (None, a.code_insee)]
    expected = sorted(pool, key=lambda a: (distance_m(lon, lat, a.lon, a.lat), a.id))[:4]
    params = {"lon": str(lon), "lat": str(lat), "limit": "4"} | ({"citycode": citycode} if citycode else {})
    _, body = await get(client, "/reverse", **params)
    assert [f["properties"]["id"] for f in body["features"]] == [a.id for a in expected]
    assert [f["properties"]["distance"] for f in body["features"]] == [
        round(distance_m(lon, lat, a.lon, a.lat)) for a in expected
    ]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, ["lon: required param", "lat: required param"]),
        ({"lon": "2.3"}, ["lat: required param"]),
        ({"lon": "2.3", "lat": "x"}, ["lat: must be a float between -90 and 90"]),
        ({"lon": "2.3", "lat": "48.8", "type": "poi"}, ["Unexpected value 'poi' for param type"]),
    ],
)
async def test_reverse_validation(client: TestClient, params: dict[str, str], detail: list[str]) -> None:
    status, body = await get(client, "/reverse", **params)
    assert (status, body) == (400, {"code": 400, "message": "Failed parsing query", "detail": detail})


async def test_rate_limit_answers_429_with_retry_after(addresses: list[Address]) -> None:
    now = [100.0]
    client = await _client(make_app(addresses, rate_limit=2, retry_after=7, clock=lambda: now[0]))
    try:
        statuses = [(await client.get("/search", params={"q": "rivoli"})).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = await client.get("/search", params={"q": "rivoli"})
        assert response.headers["Retry-After"] == "7"
        assert await response.json() == {"code": 429, "message": "Too Many Requests"}
        now[0] += 0.5  # one token back at 2 requests per second
        assert (await client.get("/reverse", params={"lon": "2.3", "lat": "48.8"})).status == 200
        assert (await client.get("/reverse", params={"lon": "2.3", "lat": "48.8"})).status == 429
        stats = await (await client.get("/_simulator/stats")).json()
        assert stats["statuses"] == {"200": 3, "429": 3}
    finally:
        await client.close()


async def set_mode(client: TestClient, mode: str, delay: float = 0) -> None:
    response = await client.post("/_simulator/mode", json={"mode": mode, "delay": delay})
    assert response.status == 200


async def test_forced_429_then_normal_again(client: TestClient) -> None:
    await set_mode(client, "429")
    response = await client.get("/search", params={"q": "rivoli"})
    assert response.status == 429 and response.headers["Retry-After"] == "5"
    await set_mode(client, "normal")
    assert (await client.get("/search", params={"q": "rivoli"})).status == 200


async def test_forced_500(client: TestClient) -> None:
    await set_mode(client, "500")
    for path in ("/search", "/reverse"):
        response = await client.get(path, params={"q": "rivoli", "lon": "2.3", "lat": "48.8"})
        assert response.status == 500
        assert await response.json() == {"code": 500, "message": "An unexpected error has occurred"}
    stats = await (await client.get("/_simulator/stats")).json()
    assert stats == {"mode": "500", "total": 2, "calls": {"search": 1, "reverse": 1}, "statuses": {"500": 2}}


async def test_slow_mode_makes_a_client_time_out(client: TestClient) -> None:
    await set_mode(client, "slow", delay=1)
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/search", params={"q": "rivoli"}, timeout=aiohttp.ClientTimeout(total=0.1))
    await set_mode(client, "normal")
    assert (await client.get("/search", params={"q": "rivoli"})).status == 200


@pytest.mark.parametrize("body", [{"mode": "teapot"}, {"delay": 1}, {"mode": "slow", "delay": -1}, "not json"])
async def test_bad_mode_requests_are_refused(client: TestClient, body: Any) -> None:
    response = await client.post("/_simulator/mode", json=body)
    assert response.status == 400
    stats = await (await client.get("/_simulator/stats")).json()
    assert stats["mode"] == "normal"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_cli_serves_a_data_file() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "simulators.geoplateforme", "--data", str(DATA), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                try:
                    async with session.get(f"http://127.0.0.1:{port}/search", params={"q": "jarjayes"}) as response:
                        assert response.status == 200
                        body = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "the simulator did not start"
                    await asyncio.sleep(0.1)
        assert body["features"][0]["properties"]["citycode"] == "05068"
    finally:
        process.terminate()
        process.wait(timeout=10)
