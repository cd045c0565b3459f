"""Admin API: the instances' circuit breakers (GET /manage/api/upstreams/, reset)."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from passerelle import Connector, HttpConfig, Param, endpoint
from passerelle.http import HttpOptions, options_from_config
from passerelle.testing import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Calls to the application.")


class Probe(Connector):
    slug = "probe"
    title = "Probe"
    description = "Calls any URL."
    Config = ProbeConfig

    def http_options(self) -> HttpOptions:
        return options_from_config(self.config, HttpOptions(retries=0, breaker_threshold=2))

    @endpoint(description="GET a URL.")
    async def get(self, url: Annotated[str, Param("URL", example="http://127.0.0.1:1/")]) -> Any:
        return (await self.http.get(url)).status


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "probe": Probe}


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def admin(client, method: str, path: str) -> tuple[int, Any]:
    response = await client.request(method, f"/manage/api{path}", headers=AUTH)
    return response.status, await response.json()


async def test_requires_the_admin_token(hub_client):
    assert (await hub_client.get("/manage/api/upstreams/")).status == 401
    assert (await hub_client.post("/manage/api/upstreams/probe/a/reset/")).status == 401


async def test_lists_and_resets_breakers(hub_client, make_instance, fake_upstream, closed_port):
    await make_instance("probe", "a")
    await make_instance("probe", "b")
    assert await admin(hub_client, "GET", "/upstreams/") == (200, {"err": 0, "data": []})

    down = f"http://127.0.0.1:{closed_port}"
    fake_upstream.reply("GET", "/", json={})
    for _ in range(2):
        response = await hub_client.get("/probe/a/get", params={"url": f"{down}/"})
        assert response.status == 503
    response = await hub_client.get("/probe/a/get", params={"url": f"{down}/"})
    assert (await response.json())["err_class"] == "passerelle.envelope.BreakerOpen"
    assert (await hub_client.get("/probe/b/get", params={"url": f"{fake_upstream.url}/"})).status == 200
    assert (await hub_client.get("/probe/a/get", params={"url": f"{fake_upstream.url}/"})).status == 200

    status, payload = await admin(hub_client, "GET", "/upstreams/")
    assert status == 200
    seen = {(b["instance"], b["upstream"]): b for b in payload["data"]}
    assert set(seen) == {("probe/a", down), ("probe/a", fake_upstream.url), ("probe/b", fake_upstream.url)}
    broken = seen["probe/a", down]
    assert broken["type"] == "probe" and broken["slug"] == "a"
    assert broken["state"] == "open"
    assert broken["consecutive_failures"] == 2
    assert broken["threshold"] == 2
    assert broken["opened_at"] is not None and broken["next_probe"] > broken["opened_at"]
    assert seen["probe/b", fake_upstream.url]["state"] == "closed"
    assert seen["probe/b", fake_upstream.url]["next_probe"] is None

    status, payload = await admin(hub_client, "POST", "/upstreams/probe/a/reset/")
    assert status == 200
    assert {b["upstream"]: b["state"] for b in payload["data"]} == {down: "closed", fake_upstream.url: "closed"}
    # Closed again: the next call goes to the application (which is still down).
    response = await hub_client.get("/probe/a/get", params={"url": f"{down}/"})
    assert (await response.json())["err_class"] == "passerelle.envelope.UpstreamUnavailable"


async def test_reset_of_one_upstream(hub_client, make_instance, closed_port):
    await make_instance("probe", "a")
    down = f"http://127.0.0.1:{closed_port}"
    for _ in range(2):
        await hub_client.get("/probe/a/get", params={"url": f"{down}/"})
    status, payload = await admin(hub_client, "POST", "/upstreams/probe/a/reset/?upstream=http://elsewhere:80")
    assert status == 404
    assert payload["err_class"] == "passerelle.envelope.NotFound"
    status, payload = await admin(hub_client, "POST", f"/upstreams/probe/a/reset/?upstream={down}")
    assert status == 200
    assert payload["data"][0]["state"] == "closed"


async def test_reset_of_an_unknown_instance(hub_client, make_instance):
    await make_instance("probe", "a")
    assert (await admin(hub_client, "POST", "/upstreams/probe/nothing/reset/"))[0] == 404
    assert (await admin(hub_client, "POST", "/upstreams/nothing/a/reset/"))[0] == 404
    # An instance that never called anything has no breaker.
    assert await admin(hub_client, "POST", "/upstreams/probe/a/reset/") == (200, {"err": 0, "data": []})
