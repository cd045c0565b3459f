"""The geo.api.gouv.fr simulator speaks the wire format of protocols.md §2."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulators.geoapi import bundled_dataset, make_app
from simulators.geoapi.app import LIMIT_ERROR

ROOT = Path(__file__).parent.parent.parent
COMMUNE_DEFAULT_KEYS = ["nom", "code", "codeDepartement", "codeRegion", "codesPostaux", "population"]


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(make_app(), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def get(client: TestClient, path: str, **params: str) -> tuple[int, Any]:
    response = await client.get(path, params=params)
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.text()


async def text_error(client: TestClient, path: str, method: str = "GET", **params: str) -> tuple[int, str, str]:
    response = await client.request(method, path, params=params)
    return response.status, response.content_type, await response.text()


# -- /communes ----------------------------------------------------------------------------------------------------


async def test_communes_default_fields_without_siren_nor_epci(client: TestClient) -> None:
    status, body = await get(client, "/communes", code="01001")
    assert status == 200
    # The bundle has no siren nor EPCI: those keys are left out, in the default order otherwise.
    assert body == [
        {
            "nom": "L'Abergement-Clémenciat",
            "code": "01001",
            "codeDepartement": "01",
            "codeRegion": "84",
            "codesPostaux": ["01400"],
            "population": 860,
        }
    ]
    assert list(body[0]) == COMMUNE_DEFAULT_KEYS


async def test_codes_are_strings_with_leading_zeros_and_postcodes_lists(client: TestClient) -> None:
    _, body = await get(client, "/communes", codeDepartement="01", limit="50")
    assert len(body) == 50
    for commune in body:
        assert isinstance(commune["code"], str) and len(commune["code"]) == 5 and commune["code"].startswith("01")
        assert commune["codeDepartement"] == "01"
        assert isinstance(commune["codesPostaux"], list)
        assert all(isinstance(postcode, str) and len(postcode) == 5 for postcode in commune["codesPostaux"])
        assert isinstance(commune["population"], int)


async def test_answers_are_compact_utf8_json(client: TestClient) -> None:
    response = await client.get("/communes", params={"code": "01001"})
    raw = await response.read()
    assert "Clémenciat".encode() in raw
    assert b'"code":"01001"' in raw


async def test_fields_are_chosen_and_nom_code_always_added(client: TestClient) -> None:
    _, body = await get(client, "/communes", code="75056", fields="population,zone,departement,region,siren")
    assert body == [
        {
            "population": body[0]["population"],
            "zone": "metro",
            "departement": {"code": "75", "nom": "Paris"},
            "region": {"code": "11", "nom": "Île-de-France"},
            "nom": "Paris",
            "code": "75056",
        }
    ]
    _, body = await get(client, "/communes", code="75056", fields="codesPostaux")
    assert set(body[0]) == {"codesPostaux", "nom", "code"}
    assert len(body[0]["codesPostaux"]) == 21


async def test_nom_search_adds_score_and_ranks(client: TestClient) -> None:
    _, body = await get(client, "/communes", nom="versailles")
    assert body[0]["nom"] == "Versailles" and body[0]["_score"] == 1.0
    assert list(body[0]) == [*COMMUNE_DEFAULT_KEYS, "_score"]
    _, body = await get(client, "/communes", nom="saint etienne")
    scores = [commune["_score"] for commune in body]
    assert len(body) > 10 and scores == sorted(scores, reverse=True)
    assert body[0]["nom"] == "Saint-Étienne"
    assert all(isinstance(score, float) and 0 < score <= 1 for score in scores)
    # No nom, no _score.
    _, body = await get(client, "/communes", codePostal="05000")
    assert body and all("_score" not in commune for commune in body)


async def test_boost_population_ranks_equal_scores_by_population(client: TestClient) -> None:
    _, body = await get(client, "/communes", nom="saint denis", boost="population")
    top = [commune for commune in body if commune["_score"] == body[0]["_score"]]
    populations = [commune["population"] for commune in top]
    assert populations == sorted(populations, reverse=True)


async def test_filters(client: TestClient) -> None:
    _, body = await get(client, "/communes", codePostal="05000")
    assert {commune["code"] for commune in body} >= {"05061"}
    assert all("05000" in commune["codesPostaux"] for commune in body)
    _, body = await get(client, "/communes", codeRegion="94", fields="codeDepartement")
    assert {commune["codeDepartement"] for commune in body} == {"2A", "2B"}
    # Arrays even for one match, and empty ones for none.
    status, body = await get(client, "/communes", code="99999")
    assert (status, body) == (200, [])
    _, body = await get(client, "/communes", nom="gap", codeDepartement="05", codePostal="05000")
    assert [commune["nom"] for commune in body] == ["Gap"]


async def test_type_filter_and_arrondissements(client: TestClient) -> None:
    # Arrondissements are not listed by default.
    _, body = await get(client, "/communes", code="69383")
    assert body == []
    _, body = await get(client, "/communes", code="69383", type="arrondissement-municipal", fields="type")
    assert body == [{"type": "arrondissement-municipal", "nom": "Lyon 3e Arrondissement", "code": "69383"}]
    _, both = await get(client, "/communes", codeDepartement="69", type="commune-actuelle,arrondissement-municipal")
    _, current = await get(client, "/communes", codeDepartement="69")
    assert len(both) == len(current) + 9
    _, body = await get(client, "/communes", type="arrondissement-municipal")
    assert len(body) == 45


async def test_zone_filter(client: TestClient) -> None:
    _, everything = await get(client, "/communes", fields="zone")
    assert {commune["zone"] for commune in everything} == {"metro", "drom", "com"}
    assert len(everything) == 34_969
    _, overseas = await get(client, "/communes", zone="drom,com", fields="zone")
    assert {commune["zone"] for commune in overseas} == {"drom", "com"}
    _, collectivities = await get(client, "/communes", zone="com", fields="codeDepartement")
    assert "975" in {commune["codeDepartement"] for commune in collectivities}


async def test_limit(client: TestClient) -> None:
    _, body = await get(client, "/communes", limit="3")
    assert [commune["code"] for commune in body] == ["01001", "01002", "01004"]
    _, body = await get(client, "/communes", limit="0")
    assert body == []
    for bad in ("-1", "abc", "2.5"):
        assert await text_error(client, "/communes", limit=bad) == (400, "text/plain", LIMIT_ERROR)
    assert (await text_error(client, "/departements", limit="-2"))[0] == 400


async def test_formats(client: TestClient) -> None:
    status, content_type, text = await text_error(client, "/communes", format="geojson", code="01001")
    assert (status, content_type) == (400, "text/plain") and "not simulated" in text
    # Anything else falls back to JSON, as on the real service.
    status, body = await get(client, "/communes", format="csv", code="01001")
    assert status == 200 and body[0]["code"] == "01001"


async def test_single_commune_and_404(client: TestClient) -> None:
    status, body = await get(client, "/communes/01001")
    assert status == 200 and body["code"] == "01001" and list(body) == COMMUNE_DEFAULT_KEYS
    # By code every type is found, arrondissements included.
    _, body = await get(client, "/communes/75101/", fields="nom,type")
    assert body == {"nom": "Paris 1er Arrondissement", "type": "arrondissement-municipal", "code": "75101"}
    assert await text_error(client, "/communes/1001") == (404, "text/plain", "Not Found")
    assert await text_error(client, "/nowhere") == (404, "text/plain", "Not Found")


# -- /departements and /regions -----------------------------------------------------------------------------------


async def test_departements(client: TestClient) -> None:
    status, body = await get(client, "/departements")
    assert status == 200
    assert body[0] == {"nom": "Ain", "code": "01", "codeRegion": "84"}
    codes = [row["code"] for row in body]
    assert len(codes) == 101 and "2A" in codes and "975" not in codes
    _, body = await get(client, "/departements", zone="metro,drom,com", fields="zone")
    assert len(body) == 109 and {row["zone"] for row in body} == {"metro", "drom", "com"}
    _, body = await get(client, "/departements", codeRegion="94")
    assert [row["code"] for row in body] == ["2A", "2B"]
    _, body = await get(client, "/departements", nom="hautes alpes")
    assert body[0] == {"nom": "Hautes-Alpes", "code": "05", "codeRegion": "93", "_score": 1.0}
    _, body = await get(client, "/departements", code="05", fields="region")
    assert body == [
        {"region": {"code": "93", "nom": "Provence-Alpes-Côte d'Azur"}, "nom": "Hautes-Alpes", "code": "05"}
    ]


async def test_departement_routes(client: TestClient) -> None:
    assert (await get(client, "/departements/2A")) == (200, {"nom": "Corse-du-Sud", "code": "2A", "codeRegion": "94"})
    # By code, a collectivity is found even though it is not listed by default.
    assert (await get(client, "/departements/975"))[1]["nom"] == "Saint-Pierre-et-Miquelon"
    assert await text_error(client, "/departements/20") == (404, "text/plain", "Not Found")
    status, body = await get(client, "/departements/05/communes")
    assert status == 200 and len(body) == 162 and all(row["codeDepartement"] == "05" for row in body)
    assert list(body[0]) == COMMUNE_DEFAULT_KEYS
    _, body = await get(client, "/departements/69/communes", limit="2", fields="nom")
    assert len(body) == 2 and all(set(row) == {"nom", "code"} for row in body)
    assert await text_error(client, "/departements/20/communes") == (404, "text/plain", "Not Found")


async def test_regions(client: TestClient) -> None:
    status, body = await get(client, "/regions")
    assert status == 200 and len(body) == 18
    assert {"nom": "Île-de-France", "code": "11"} in body
    assert all(list(row) == ["nom", "code"] for row in body)
    _, body = await get(client, "/regions", zone="metro,drom,com", fields="zone")
    assert len(body) == 26
    _, body = await get(client, "/regions", nom="bretagne")
    assert body == [{"nom": "Bretagne", "code": "53", "_score": 1.0}]
    assert (await get(client, "/regions/01")) == (200, {"nom": "Guadeloupe", "code": "01"})
    assert await text_error(client, "/regions/99") == (404, "text/plain", "Not Found")
    _, body = await get(client, "/regions/94/departements")
    assert body == [
        {"nom": "Corse-du-Sud", "code": "2A", "codeRegion": "94"},
        {"nom": "Haute-Corse", "code": "2B", "codeRegion": "94"},
    ]
    assert await text_error(client, "/regions/99/departements") == (404, "text/plain", "Not Found")


# -- methods, modes, stats ----------------------------------------------------------------------------------------


async def test_only_get_and_head(client: TestClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert await text_error(client, "/communes", method) == (401, "text/plain", "Unauthorized")
    assert (await text_error(client, "/regions/11", "POST"))[0] == 401
    response = await client.head("/regions")
    assert response.status == 200


async def test_modes_and_stats(client: TestClient) -> None:
    await client.get("/regions")
    await client.get("/regions/")
    await client.get("/communes/99999")
    response = await client.post("/_simulator/mode", json={"mode": "500"})
    assert await response.json() == {"mode": "500", "delay": 0.0}
    assert await text_error(client, "/communes") == (500, "text/plain", "Internal Server Error")
    response = await client.post("/_simulator/mode", json={"mode": "slow", "delay": 0.3})
    started = time.monotonic()
    status, _ = await get(client, "/regions/11")
    assert status == 200 and time.monotonic() - started >= 0.3
    response = await client.post("/_simulator/mode", json={"mode": "429"})
    assert response.status == 400
    response = await client.post("/_simulator/mode", json={"mode": "normal"})
    stats = await (await client.get("/_simulator/stats")).json()
    assert stats["mode"] == "normal"
    assert stats["calls"] == {"regions": 2, "communes/99999": 1, "communes": 1, "regions/11": 1}
    assert stats["statuses"] == {"200": 3, "404": 1, "500": 1}
    assert stats["total"] == 5


async def test_slow_mode_makes_a_client_time_out(client: TestClient) -> None:
    await client.post("/_simulator/mode", json={"mode": "slow", "delay": 2})
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/regions", timeout=aiohttp.ClientTimeout(total=0.2))


def test_dataset_is_the_bundle() -> None:
    data = bundled_dataset()
    assert len(data.communes) == 35_014 and len(data.departements) == 109 and len(data.regions) == 26


def test_runs_standalone() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.geoapi", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "geo.api simulator" in process.stdout.readline()

        async def fetch() -> Any:
            # The banner is printed before the socket is bound: retry until it is.
            deadline = time.monotonic() + 15
            async with aiohttp.ClientSession() as session:
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/communes/05061") as response:
                            return await response.json()
                    except aiohttp.ClientConnectorError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)

        assert asyncio.run(fetch())["nom"] == "Gap"
    finally:
        process.terminate()
        process.wait(timeout=10)
