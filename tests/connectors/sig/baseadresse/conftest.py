"""Fixtures of the base-adresse tests: the BAN sample, the Géoplateforme simulator, instances on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from connectors.sig.baseadresse import BaseAdresse
from simulators.geoplateforme.app import make_app
from simulators.geoplateforme.data import load_csv

# 347 real BAN rows (Licence Ouverte 2.0): Paris 1er, communes of the Hautes-Alpes, La Réunion, two BAL files.
SAMPLE = Path(__file__).parents[3] / "simulators" / "data" / "addresses-sample.csv"

MakeBan = Callable[..., Awaitable[BaseAdresse]]


@pytest.fixture(scope="session")
def sample_addresses() -> list[Any]:
    return load_csv(SAMPLE)


@pytest.fixture
async def simulator(sample_addresses: list[Any]) -> AsyncIterator[TestServer]:
    """The Géoplateforme simulator on 127.0.0.1, serving the same sample."""
    server = TestServer(make_app(sample_addresses), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def wait_ready(connector: BaseAdresse, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while connector.local.index is None:
            if connector.local.status()["state"] == "failed":
                raise AssertionError(connector.local.status())
            await asyncio.sleep(0.05)


@pytest.fixture
def make_ban(make_instance: Callable[..., Awaitable[Any]]) -> MakeBan:
    """An instance (sources: the sample by default); waits until its index is loaded when it has sources."""

    async def make(slug: str = "test", *, wait: bool = True, **config: Any) -> BaseAdresse:
        config.setdefault("sources", [str(SAMPLE)])
        connector = await make_instance("base-adresse", slug, config=config)
        assert isinstance(connector, BaseAdresse)
        if wait and connector.config.local_enabled:
            await wait_ready(connector)
        return connector

    return make


async def get_json(client: Any, url: str, status: int = 200, **params: Any) -> Any:
    response = await client.get(url, params=params)
    payload = await response.json()
    assert response.status == status, payload
    return payload
