"""cities/departments/regions refreshed from geo.api.gouv.fr (api_geo_url), against the geo.api simulator:
downloaded at the first start, saved, used by every process, kept when a download fails."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from connectors.sig.baseadresse import BaseAdresse
from simulators.geoapi.app import make_app
from simulators.geoapi.data import bundled_dataset
from tests.connectors.sig.baseadresse.conftest import get_json

URL = "/base-adresse/test"
NEW_NAME = "Gap-sur-Luye"  # the simulator's Gap is renamed: an answer with it came from the download


@pytest.fixture
async def geoapi():
    data = bundled_dataset()
    renamed = tuple({**row, "nom": NEW_NAME} if row["code"] == "05061" else row for row in data.communes)
    server = TestServer(make_app(dataclasses.replace(data, communes=renamed)), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def wait_downloaded(connector: BaseAdresse) -> None:
    async with asyncio.timeout(60):
        while connector.areas.status()["source"] != "geo.api":
            assert connector.areas.status()["last_error"] is None, connector.areas.status()
            await asyncio.sleep(0.05)


async def test_downloaded_at_first_start_then_used(make_ban, hub_client, geoapi, hub_settings):
    connector = await make_ban(sources=[], backends=["remote"], api_geo_url=str(geoapi.make_url("/")))
    await wait_downloaded(connector)
    cities = (await get_json(hub_client, f"{URL}/cities", id="05061.05000"))["data"]
    assert cities[0]["text"] == f"{NEW_NAME} 05000"
    assert (await get_json(hub_client, f"{URL}/departments", id="05"))["data"][0]["name"] == "Hautes-Alpes"
    status = connector.status_details()["referentials"]
    assert status["source"] == "geo.api" and status["downloaded"]

    # A restart, or another process: the saved lists, without downloading again.
    async with ClientSession() as session:
        await session.post(geoapi.make_url("/_simulator/mode"), json={"mode": "500"})
    again = BaseAdresse(connector.instance, connector.config, hub_settings)
    await again.areas.load()
    assert again.areas.status()["source"] == "geo.api"
    assert again.areas.current().cities_by_id["05061.05000"].name == NEW_NAME
    await again.close()


async def test_a_failed_download_keeps_the_lists_in_use(make_ban, hub_client, geoapi):
    connector = await make_ban(sources=[], backends=["remote"], api_geo_url=str(geoapi.make_url("/")))
    await wait_downloaded(connector)
    async with ClientSession() as session:
        await session.post(geoapi.make_url("/_simulator/mode"), json={"mode": "500"})
    assert not await connector.areas.refresh()
    status = connector.areas.status()
    assert status["source"] == "geo.api" and "HTTP 500" in status["last_error"]
    assert (await get_json(hub_client, f"{URL}/cities", q="gap"))["data"][0]["name"] == NEW_NAME


async def test_without_api_geo_url_the_bundled_lists(make_ban, hub_client):
    connector = await make_ban(sources=[], backends=["remote"])
    assert not await connector.areas.refresh()
    assert connector.areas.status()["source"] == "bundled"
    assert (await get_json(hub_client, f"{URL}/cities", id="05061.05000"))["data"][0]["name"] == "Gap"


async def test_an_unreachable_geo_api_at_first_start_serves_the_bundled_lists(make_ban, hub_client, unused_tcp_port):
    connector = await make_ban(
        sources=[], backends=["remote"], api_geo_url=f"http://127.0.0.1:{unused_tcp_port}/", http={"retries": 0}
    )
    async with asyncio.timeout(30):
        while connector.areas.status()["last_error"] is None:
            await asyncio.sleep(0.05)
    assert (await get_json(hub_client, f"{URL}/cities", id="05061.05000"))["data"][0]["name"] == "Gap"
