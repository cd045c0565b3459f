"""fetch_referentials against the geo.api.gouv.fr simulator: the refresh, and each way it refuses to replace data."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.sig.geoapi import fetch_referentials
from connectors.sig.referentials import bundled, cities, departments, regions
from passerelle import UpstreamError
from passerelle.envelope import UpstreamUnavailable
from passerelle.http import HttpClient, HttpOptions
from simulators.geoapi import bundled_dataset, make_app

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test-geoapi", HttpOptions(retries=0, breaker_threshold=0))
    yield client
    await client.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url(""))

    yield start
    for server in servers:
        await server.close()


async def test_fetch_gives_the_bundled_referentials(http: HttpClient, serve: Serve) -> None:
    app = make_app()
    base_url = await serve(app)
    refs = await fetch_referentials(http, base_url + "/")
    assert refs == bundled()
    assert cities(q="lyon 3", refs=refs) == cities(q="lyon 3")
    assert departments(refs=refs) == departments()
    assert regions(refs=refs) == regions()
    stats = await _stats(http, base_url)
    assert stats["calls"] == {"regions": 1, "departements": 1, "communes": 1}


async def _stats(http: HttpClient, base_url: str) -> dict[str, Any]:
    response = await http.get(f"{base_url}/_simulator/stats")
    return response.json()


async def test_a_500_is_an_upstream_error(http: HttpClient, serve: Serve) -> None:
    base_url = await serve(make_app())
    await http.post(f"{base_url}/_simulator/mode", json={"mode": "500"})
    with pytest.raises(UpstreamError, match=r"geo.api /regions: the application answered HTTP 500") as caught:
        await fetch_referentials(http, base_url)
    assert not isinstance(caught.value, UpstreamUnavailable)


async def test_a_500_is_retried_by_the_client(serve: Serve) -> None:
    base_url = await serve(make_app())
    client = HttpClient("test-geoapi-retries", HttpOptions(retries=2, backoff_base=0.01, breaker_threshold=0))
    try:
        await client.post(f"{base_url}/_simulator/mode", json={"mode": "500"})
        with pytest.raises(UpstreamError, match="HTTP 500"):
            await fetch_referentials(client, base_url)
        stats = await _stats(client, base_url)
        assert stats["calls"] == {"regions": 3}
    finally:
        await client.close()


async def test_an_http_error_quotes_the_text_body(http: HttpClient, serve: Serve) -> None:
    base_url = await serve(make_app())
    # A base URL missing a path segment: the simulator's text 404.
    with pytest.raises(UpstreamError, match=r"geo.api /regions answered HTTP 404: 'Not Found'"):
        await fetch_referentials(http, base_url + "/v1")


async def test_a_truncated_answer_is_refused(http: HttpClient, serve: Serve) -> None:
    data = bundled_dataset()
    # A service answering only part of the communes, as a cut-off or partial deployment would.
    partial = dataclasses.replace(data, communes=data.communes[:20_000])
    base_url = await serve(make_app(partial))
    with pytest.raises(UpstreamError, match=r"unusable referentials: communes: only 20000 rows, fewer than the 30000"):
        await fetch_referentials(http, base_url)


async def test_missing_regions_are_refused(http: HttpClient, serve: Serve) -> None:
    data = bundled_dataset()
    base_url = await serve(make_app(dataclasses.replace(data, regions=data.regions[:10])))
    with pytest.raises(UpstreamError, match=r"regions: only 10 rows"):
        await fetch_referentials(http, base_url)


def _fake(answers: dict[str, Any]) -> web.Application:
    """A tiny geo.api answering fixed bodies: JSON values, or raw bytes as they are."""

    async def handler(request: web.Request) -> web.StreamResponse:
        answer = answers[request.path.strip("/")]
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="text/html")
        return web.json_response(answer)

    app = web.Application()
    for path in answers:
        app.router.add_get(f"/{path}", handler)
    return app


async def test_invalid_rows_are_refused(http: HttpClient, serve: Serve) -> None:
    payload = bundled().to_payload()
    communes = [dict(row) for row in payload["communes"]]
    communes[3]["codesPostaux"] = "01500"
    base_url = await serve(
        _fake({"communes": communes, "departements": payload["departements"], "regions": payload["regions"]})
    )
    with pytest.raises(UpstreamError, match=r"communes\[3\] \(code '01005'\): field 'codesPostaux'") as caught:
        await fetch_referentials(http, base_url)
    assert isinstance(caught.value.__cause__, ValueError)


async def test_non_json_and_non_list_answers_are_refused(http: HttpClient, serve: Serve) -> None:
    base_url = await serve(_fake({"regions": b"<html>maintenance</html>"}))
    with pytest.raises(UpstreamError, match=r"geo.api /regions: .*not JSON"):
        await fetch_referentials(http, base_url)
    base_url = await serve(_fake({"regions": {"message": "moved"}}))
    with pytest.raises(UpstreamError, match=r"geo.api /regions answered a JSON dict, not a list"):
        await fetch_referentials(http, base_url)


async def test_an_unreachable_service_is_unavailable(http: HttpClient) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamUnavailable):
        await fetch_referentials(http, f"http://127.0.0.1:{port}")
