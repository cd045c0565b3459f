"""The response cache in Redis (``cache_url``): the same behaviours as in memory, shared
between hubs, and a Redis that is down or slow turning lookups into misses.

Needs a Redis (``PASSERELLE_TEST_REDIS_URL``, or a ``redis-server`` on PATH, see
tests/passerelle/auth/conftest.py); skipped without one, except the tests of a Redis
that is down, which need none."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from passerelle.app import create_app
from passerelle.cache import PREFIX, RedisBackend
from passerelle.hub import HUB, Hub
from tests.passerelle.auth.conftest import free_port, redis_url  # noqa: F401
from tests.passerelle.test_cache import (  # noqa: F401
    ADMIN,
    ALICE,
    BOB,
    DURATION,
    STALE,
    STALE_WARNING,
    Application,
    Clock,
    application,
    call,
    citizen,
    wait_for,
)

Start = Callable[..., Awaitable[tuple[TestClient[Any, Any], Hub]]]


@pytest.fixture
async def instance(make_instance, application):  # noqa: F811
    return await make_instance("sample", "demo", config={"upstream_url": application.url})


@pytest.fixture
async def start_hub(hub_settings, hub_connector_types, hub_engine, instance) -> AsyncIterator[Start]:
    """Start a hub (another process, as far as the cache can tell) with these settings."""
    clients: list[TestClient[Any, Any]] = []

    async def start(clock: Clock | None = None, **changes: Any) -> tuple[TestClient[Any, Any], Hub]:
        app = create_app(hub_settings.model_copy(update=changes), types=hub_connector_types, engine=hub_engine)
        if clock is not None:
            app[HUB].cache.clock = clock
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client, app[HUB]

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def redis_hub(start_hub, redis_url) -> tuple[TestClient[Any, Any], Hub, Clock]:  # noqa: F811
    clock = Clock()
    client, hub = await start_hub(clock, cache_url=redis_url)
    assert isinstance(hub.cache.backend, RedisBackend)
    await hub.cache.clear()  # what earlier tests left
    return client, hub, clock


async def test_hit_miss_expiry_and_ttl(redis_hub, application):  # noqa: F811
    client, hub, clock = redis_hub
    status, headers, body = await call(client, "cached?q=a&NameID=" + ALICE)
    assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "miss", 1)
    clock.advance(DURATION - 1)
    status, headers, body = await call(client, "cached?NameID=" + ALICE + "&q=a&apikey=x&callback=cb")
    assert (headers["X-Cache"], headers["Age"]) == ("hit", str(DURATION - 1))
    assert body == f'cb({{"err":0,"data":{{"q":"a","NameID":"{ALICE}","n":1}}}});'
    clock.advance(2)
    assert (await call(client, "cached?q=a&NameID=" + ALICE))[1]["X-Cache"] == "miss"
    assert application.calls == 2

    redis = hub.cache.backend.client
    keys = [key.decode() async for key in redis.scan_iter(match=PREFIX + "*")]
    assert len(keys) == 1 and keys[0].startswith(PREFIX + "sample/demo:")
    assert ALICE not in keys[0]
    # Kept for the cache duration plus the stale window, then Redis forgets it.
    assert (DURATION + STALE - 5) * 1000 < await redis.pttl(keys[0]) <= (DURATION + STALE) * 1000


async def test_stale_answers_from_redis(redis_hub, application):  # noqa: F811
    client, _hub, clock = redis_hub
    await call(client, "cached-result")
    application.nonsense = True
    clock.advance(DURATION + 1)
    status, headers, body = await call(client, "cached-result")
    assert (status, headers["X-Cache"], headers["Warning"]) == (200, "stale", STALE_WARNING)
    assert body == {"err": 0, "data": {"q": "", "NameID": "", "n": 1}, "source": "upstream", "stale": True}
    clock.advance(STALE)
    status, headers, body = await call(client, "cached-result")
    assert (status, body["err_class"]) == (502, "passerelle.envelope.UpstreamError")


async def test_single_flight_with_redis(redis_hub, application):  # noqa: F811
    client, hub, _clock = redis_hub
    application.gate = asyncio.Event()
    requests = [asyncio.create_task(call(client, "cached?q=a")) for _ in range(50)]
    await wait_for(lambda: hub.cache.waiting == 50 and application.calls >= 1, "50 calls waiting")
    application.gate.set()
    answers = await asyncio.gather(*requests)
    assert {(status, body["data"]["n"]) for status, _, body in answers} == {(200, 1)}
    assert application.calls == 1


async def test_hubs_sharing_redis_share_answers(redis_hub, start_hub, redis_url, application):  # noqa: F811
    client, _hub, clock = redis_hub
    other, _ = await start_hub(clock, cache_url=redis_url)
    await call(client, "cached?q=a")
    status, headers, body = await call(other, "cached?q=a")
    assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "hit", 1)
    assert application.calls == 1


async def test_erasing_a_citizen_in_redis(redis_hub, application):  # noqa: F811
    client, _hub, _clock = redis_hub
    for path in (f"cached?q=a&NameID={ALICE}", f"cached?q=b&NameID={ALICE}", f"cached?q=a&NameID={BOB}", "cached"):
        await call(client, path)
    assert (await citizen(client, "GET", ALICE))[1]["data"]["response cache"] == 2
    status, payload = await citizen(client, "DELETE", ALICE)
    assert (status, payload["data"]["removed"]["response cache"]) == (200, 2)
    assert (await citizen(client, "GET", ALICE))[1]["data"]["response cache"] == 0
    assert (await call(client, f"cached?q=a&NameID={ALICE}"))[1]["X-Cache"] == "miss"
    assert (await call(client, f"cached?q=a&NameID={BOB}"))[1]["X-Cache"] == "hit"
    assert (await call(client, "cached"))[1]["X-Cache"] == "hit"


async def test_flush_removes_only_the_cache(redis_hub, application):  # noqa: F811
    client, hub, _clock = redis_hub
    redis = hub.cache.backend.client
    await redis.set("passerelle:nonce:test-flush", 1, ex=60)
    await call(client, "cached?q=a")
    await call(client, "cached-raw")
    response = await client.delete("/manage/api/cache/", headers=ADMIN)
    assert (await response.json())["data"] == {"removed": 2}
    assert await redis.exists("passerelle:nonce:test-flush")
    assert (await call(client, "cached?q=a"))[1]["X-Cache"] == "miss"


# -- Redis down or slow: answered without the cache ----------------------------------------


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


async def test_a_redis_that_is_down_makes_misses(start_hub, application):  # noqa: F811
    with capture_logs() as logs:
        client, _hub = await start_hub(cache_url=closed_port_url())
        for n in (1, 2, 3):
            status, headers, body = await call(client, "cached?q=a")
            assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "miss", n)
    warnings = [log for log in logs if log["event"] == "the response cache's Redis failed, answering without it"]
    # Once, then Redis is left alone for a while rather than costing every request a timeout.
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"

    # An erasure that cannot reach Redis says so: it must be run again.
    status, payload = await citizen(client, "DELETE", ALICE)
    assert (status, payload["data"]["failed"]) == (500, ["response cache"])


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0, family=socket.AF_INET)
    yield server.sockets[0].getsockname()[1]
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_redis_that_hangs_makes_misses(start_hub, silent_server, application):  # noqa: F811
    client, _hub = await start_hub(cache_url=f"redis://127.0.0.1:{silent_server}/0")
    async with asyncio.timeout(10):  # did not hang (each Redis command gives up after 0.25 s)
        for n in (1, 2):
            status, headers, body = await call(client, "cached?q=a")
            assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "miss", n)


async def test_the_cli_reaches_the_shared_cache(redis_hub, application, hub_settings, redis_url):  # noqa: F811
    # `passerelle citizen show|erase` runs outside any hub process: a Redis cache is in its reach.
    from passerelle.cli import _with_citizens

    client, _hub, _clock = redis_hub
    for path in (f"cached?q=a&NameID={ALICE}", f"cached?q=a&NameID={BOB}"):
        await call(client, path)
    settings = hub_settings.model_copy(update={"cache_url": redis_url})
    found = await _with_citizens(settings, lambda citizens: citizens.show(ALICE))
    assert found["response cache"] == 1
    erased = await _with_citizens(settings, lambda citizens: citizens.erase(ALICE, actor="cli"))
    assert erased.removed["response cache"] == 1
    assert (await call(client, f"cached?q=a&NameID={ALICE}"))[1]["X-Cache"] == "miss"
    assert (await call(client, f"cached?q=a&NameID={BOB}"))[1]["X-Cache"] == "hit"
