"""base-adresse on the remote backend, against the Géoplateforme simulator (protocols.md §1):
answers, ids kept across restarts, errors, fallback between backends, the rate limit."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from connectors.sig.baseadresse import BaseAdresse
from connectors.sig.baseadresse.remote import RemoteGeocoder
from passerelle import UpstreamError
from passerelle.http import HttpClient
from simulators.geoplateforme.app import make_app
from tests.connectors.sig.baseadresse.conftest import SAMPLE, get_json

URL = "/base-adresse/test"


def remote(server: TestServer, **config):
    return {"sources": [], "backends": ["remote"], "service_url": str(server.make_url("/")), **config}


async def set_mode(server: TestServer, mode: str) -> None:
    url = server.make_url("/_simulator/mode")
    async with ClientSession() as session, session.post(url, json={"mode": mode}) as response:
        assert response.status == 200


async def stats(server: TestServer) -> dict:
    async with ClientSession() as session, session.get(server.make_url("/_simulator/stats")) as response:
        return await response.json()


async def test_search_through_the_geocoder(make_ban, hub_client, simulator):
    await make_ban(**remote(simulator))
    results = await get_json(hub_client, f"{URL}/search", q="51 rue de rivoli", format="json")
    assert results[0]["display_name"] == "51 Rue de Rivoli 75001 Paris"
    assert results[0]["address"] == {
        "house_number": "51",
        "road": "Rue de Rivoli",
        "postcode": "75001",
        "city": "Paris",
        "citycode": "75101",
        "country": "France",
    }
    assert results[0]["lat"] == "48.858899"
    assert "x" in results[0] and "context" in results[0]  # the BAN's extras are passed on
    assert (await stats(simulator))["calls"] == {"search": 1}


async def test_filters_reach_the_geocoder(make_ban, hub_client, simulator):
    await make_ban(**remote(simulator))
    results = await get_json(hub_client, f"{URL}/search", q="route", citycode="05068", type="street", limit=3)
    assert results and all(r["address"]["citycode"] == "05068" and r["type"] == "street" for r in results)
    assert len(results) <= 3


async def test_reverse_through_the_geocoder(make_ban, hub_client, simulator):
    await make_ban(**remote(simulator))
    found = await get_json(hub_client, f"{URL}/reverse", lat="48.8589", lon="2.34667", format="json")
    assert found["address"]["house_number"] == "51"
    assert isinstance(found["distance"], int)


async def test_remote_ids_are_found_later_and_after_a_restart(make_ban, hub_client, simulator, hub_settings):
    connector = await make_ban(**remote(simulator))
    item = (await get_json(hub_client, f"{URL}/addresses", q="3 chemin des cerisiers"))["data"][0]
    assert item["id"] == "05115_6fssw6_00003"
    calls = (await stats(simulator))["total"]
    again = await get_json(hub_client, f"{URL}/addresses", id=item["id"])
    assert again["data"][0]["text"] == item["text"]
    assert (await stats(simulator))["total"] == calls  # from the instance's records, not the geocoder
    # A new connector object (a restart, another process): the records are in the database.
    await set_mode(simulator, "500")
    restarted = BaseAdresse(connector.instance, connector.config, hub_settings)
    restarted._sessionmaker = connector._sessionmaker
    found = await restarted._lookup(item["id"])
    assert found["properties"]["label"] == "3 Chemin des Cerisiers 05190 Remollon"
    await restarted.close()


async def test_a_refusing_geocoder_is_an_upstream_error(simulator):
    client = HttpClient("test/geocoder")
    try:
        geocoder = RemoteGeocoder(client, str(simulator.make_url("/")))
        with pytest.raises(UpstreamError) as caught:
            await geocoder.search("--rivoli", 5)
        assert caught.value.message == (
            "the geocoder answered HTTP 400: "
            "q: must contain between 3 and 200 chars and start with a number or a letter"
        )
    finally:
        await client.close()


async def test_a_geocoder_down_answers_a_clear_503(make_ban, hub_client, simulator):
    await make_ban(**remote(simulator, http={"retries": 0}))
    await set_mode(simulator, "500")
    payload = await get_json(hub_client, f"{URL}/addresses", status=502, q="rivoli")
    assert payload["err"] == 1 and "HTTP 500" in payload["err_desc"]


async def test_a_long_retry_after_is_not_waited_for(make_ban, hub_client, sample_addresses):
    server = TestServer(make_app(sample_addresses, retry_after=60), host="127.0.0.1")
    await server.start_server()
    try:
        await make_ban(**remote(server))
        await set_mode(server, "429")
        payload = await get_json(hub_client, f"{URL}/search", status=503, q="rivoli")
        assert "called again in 60 s" in payload["err_desc"]
        assert (await stats(server))["total"] == 1
    finally:
        await server.close()


async def test_the_local_index_answers_when_the_geocoder_fails(make_ban, hub_client, simulator):
    await make_ban(**remote(simulator, backends=["remote", "local"], sources=[str(SAMPLE)], http={"retries": 0}))
    await set_mode(simulator, "500")
    results = await get_json(hub_client, f"{URL}/search", q="51 rue de rivoli")
    assert results[0]["id"] == "75101_8249_00051"
    assert (await stats(simulator))["statuses"] == {"500": 1}


async def test_the_geocoder_answers_while_the_index_is_not_built(make_ban, hub_client, simulator, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("nothing;we;know\n", encoding="utf-8")
    await make_ban(wait=False, **remote(simulator, backends=["local", "remote"], sources=[str(broken)]))
    results = await get_json(hub_client, f"{URL}/search", q="51 rue de rivoli")
    assert results[0]["id"] == "75101_8249_00051"
    assert (await stats(simulator))["calls"] == {"search": 1}


async def test_the_rate_limit_keeps_the_geocoder_from_refusing(make_ban, hub_client, sample_addresses):
    # The geocoder allows 5 calls a second per address; the instance is told so.
    server = TestServer(make_app(sample_addresses, rate_limit=5), host="127.0.0.1")
    await server.start_server()
    try:
        await make_ban(**remote(server, rate_limit=5))
        queries = [f"{n} rue de rivoli" for n in range(41, 65, 2)]
        answers = await asyncio.gather(*(hub_client.get(f"{URL}/search", params={"q": q}) for q in queries))
        assert [a.status for a in answers] == [200] * len(queries)
        assert (await stats(server))["statuses"] == {"200": len(queries)}
    finally:
        await server.close()
