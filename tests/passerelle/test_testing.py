"""The test kit shipped to connector authors (passerelle/testing.py): the fake
upstream, make_instance, and the declaration and conformance checks."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import aiohttp
import pytest
from aiohttp import web

from passerelle import APIError, Connector, Param, endpoint
from passerelle.configfile import ConfigFileError
from passerelle.envelope import UpstreamUnavailable
from passerelle.http import HttpClient, HttpOptions
from passerelle.plugins import discover_types
from passerelle.testing import FakeUpstream, check_conformance, check_declarations, error_classes
from tests.passerelle.sample import Sample


class OwnError(APIError):
    """A connector's own business error: still part of the hub's error tree."""


class Misbehaving(Connector):
    slug = "misbehaving"
    title = "Misbehaving"
    description = "Breaks each rule check_conformance knows, once."

    @endpoint(description="Answers an err_class the hub does not have.")
    async def foreign(self) -> web.Response:
        return web.json_response({"err": 1, "err_class": "myapp.errors.Oops", "err_desc": "oops", "data": None})

    @endpoint(description="Crashes.")
    async def crash(self) -> None:
        raise RuntimeError("boom")

    @endpoint(description="Answers text.")
    async def text(self) -> web.Response:
        return web.Response(text="hello")

    @endpoint(description="Answers JSON without an envelope.")
    async def bare(self) -> web.Response:
        return web.json_response([1, 2])

    @endpoint(description="Succeeds with an error status.")
    async def teapot(self) -> web.Response:
        return web.json_response({"err": 0, "data": 1}, status=418)

    @endpoint(description="Succeeds without data.")
    async def nodata(self) -> web.Response:
        return web.json_response({"err": 0})

    @endpoint(description="Fails without saying why.")
    async def terse(self) -> web.Response:
        return web.json_response({"err": 1})

    # What follows is fine.

    @endpoint(description="Fails with its own error class.")
    async def own(self) -> None:
        raise OwnError("no such family")

    @endpoint(description="A raw endpoint answers any JSON.", raw=True)
    async def raw(self) -> list[int]:
        return [1, 2]

    @endpoint(description="Only POST: conformance calls GET endpoints only.", methods=["post"])
    async def post_only(self) -> None:
        raise RuntimeError("never called by check_conformance")


@pytest.fixture
def hub_connector_types():
    return {**discover_types(), "sample": Sample, "misbehaving": Misbehaving}


async def get(url: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.read()
        payload = await response.json() if response.content_type == "application/json" else body.decode()
        return response.status, response.content_type, payload


# -- FakeUpstream -----------------------------------------------------------------


async def test_replies_come_in_order_and_the_last_repeats(fake_upstream):
    fake_upstream.reply("GET", "/count", json={"n": 1})
    fake_upstream.reply("GET", "/count", json={"n": 2}, status=201)
    answers = [await get(f"{fake_upstream.url}/count") for _ in range(4)]
    assert answers == [
        (200, "application/json", {"n": 1}),
        (201, "application/json", {"n": 2}),
        (201, "application/json", {"n": 2}),
        (201, "application/json", {"n": 2}),
    ]


async def test_a_single_reply_repeats_forever(fake_upstream):
    fake_upstream.reply("GET", "/status", json={"status": "ok"})
    for _ in range(3):
        assert await get(f"{fake_upstream.url}/status") == (200, "application/json", {"status": "ok"})


async def test_a_reply_scripted_later_follows_the_ones_served(fake_upstream):
    fake_upstream.reply("GET", "/status", json={"status": "ok"})
    assert (await get(f"{fake_upstream.url}/status"))[2] == {"status": "ok"}
    fake_upstream.reply("GET", "/status", json={"status": "maintenance"})
    assert (await get(f"{fake_upstream.url}/status"))[2] == {"status": "maintenance"}


async def test_reply_body_headers_and_content_type(fake_upstream):
    fake_upstream.reply(
        "GET", "/export.csv", body="id;nom\n1;Mairie\n", content_type="text/csv", headers={"X-Rows": "1"}
    )
    fake_upstream.reply("GET", "/empty", status=204)
    fake_upstream.reply("GET", "/bytes", body=b"\x00\x01")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_upstream.url}/export.csv") as response:
            assert (response.status, response.content_type, response.headers["X-Rows"]) == (200, "text/csv", "1")
            assert await response.text() == "id;nom\n1;Mairie\n"
        async with session.get(f"{fake_upstream.url}/empty") as response:
            assert (response.status, await response.read()) == (204, b"")
        async with session.get(f"{fake_upstream.url}/bytes") as response:
            assert (response.content_type, await response.read()) == ("text/plain", b"\x00\x01")


async def test_unscripted_routes_answer_404(fake_upstream):
    fake_upstream.reply("POST", "/things", json={"id": 1})
    assert await get(f"{fake_upstream.url}/things") == (404, "application/json", {"error": "not scripted"})
    assert await get(f"{fake_upstream.url}/other") == (404, "application/json", {"error": "not scripted"})


async def test_requests_are_recorded(fake_upstream):
    fake_upstream.reply("POST", "/things", status=201, json={"id": 1})
    async with aiohttp.ClientSession() as session:
        url = f"{fake_upstream.url}/things?tag=a&tag=b&page=2"
        async with session.post(url, json={"name": "x"}, headers={"X-Api-Key": "k"}) as response:
            assert response.status == 201
    await get(f"{fake_upstream.url}/unscripted")
    first, second = fake_upstream.requests
    assert (first.method, first.path, first.query) == ("POST", "/things", {"tag": ["a", "b"], "page": ["2"]})
    assert first.headers["X-Api-Key"] == "k"
    assert first.headers["Content-Type"] == "application/json"
    assert first.body == b'{"name": "x"}'
    assert (second.method, second.path, second.query, second.body) == ("GET", "/unscripted", {}, b"")


async def test_delays_reach_the_client_timeout(fake_upstream):
    fake_upstream.reply("GET", "/slow", json={"late": True}, delay=1.0)
    client = HttpClient("test/slow", HttpOptions(total_timeout=0.2))
    try:
        with pytest.raises(UpstreamUnavailable, match=r"the application did not answer in 0\.2 s"):
            await client.get(f"{fake_upstream.url}/slow")
    finally:
        await client.close()


async def test_delays_are_waited(fake_upstream):
    fake_upstream.reply("GET", "/slow", json={"late": True}, delay=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await get(f"{fake_upstream.url}/slow"))[2] == {"late": True}
    assert loop.time() - started >= 0.3


async def test_fake_upstream_outside_the_fixture():
    upstream = FakeUpstream()
    with pytest.raises(AssertionError, match="the fake upstream is not started"):
        _ = upstream.url
    await upstream.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", upstream.url)
        upstream.reply("get", "/x", json=[])  # methods are case-insensitive
        assert await get(f"{upstream.url}/x") == (200, "application/json", [])
    finally:
        await upstream.close()


# -- make_instance ------------------------------------------------------------------


async def test_make_instance_returns_the_live_connector(make_instance, hub_client):
    sample = await make_instance("sample", "demo", config={"greeting": "salut"})
    assert isinstance(sample, Sample)
    assert (sample.instance.type, sample.instance.slug, sample.instance.title) == ("sample", "demo", "Sample demo")
    assert sample.config.greeting == "salut"
    response = await hub_client.get("/sample/demo/hello?name=Camille")
    assert await response.json() == {"err": 0, "data": "salut Camille"}


async def test_open_access_grants_every_right_of_the_type(make_instance, hub_client):
    await make_instance("sample", "demo", access="open")
    response = await hub_client.get("/sample/demo/secret")  # perm="can_admin"
    assert await response.json() == {"err": 0, "data": "42"}


async def test_no_access_is_a_403_envelope(make_instance, hub_client):
    await make_instance("sample", "demo", access=None)
    response = await hub_client.get("/sample/demo/hello?name=Camille")
    assert response.status == 403
    assert await response.json() == {
        "err": 1,
        "err_class": "passerelle.envelope.PermissionDenied",
        "err_desc": "permission denied: no API user may call this endpoint",
        "data": None,
    }
    response = await hub_client.get("/sample/demo/ping")  # perm=PUBLIC needs no right
    assert await response.json() == {"err": 0, "data": "pong"}


async def test_make_instance_again_updates_the_instance(make_instance, hub_client):
    first = await make_instance("sample", "demo", config={"greeting": "salut"})
    second = await make_instance("sample", "demo", config={"greeting": "coucou"}, title="Démo", access=None)
    assert second is not first
    assert (second.instance.id, second.instance.title, second.config.greeting) == (first.instance.id, "Démo", "coucou")
    assert (await hub_client.get("/sample/demo/hello?name=A")).status == 403


async def test_make_instance_refuses_an_invalid_configuration(make_instance):
    with pytest.raises(ConfigFileError, match=r"instance sample/demo \(#1\), field 'config.limit': Input should be"):
        await make_instance("sample", "demo", config={"limit": 0})


async def test_make_instance_is_reliable_while_the_registry_polls(make_instance, hub_settings):
    # With one database connection shared by every session (in-memory SQLite), a poll of
    # the registry's watcher could end make_instance's import transaction midway.
    hub_settings.config_refresh_interval = 0.01  # the watcher reads it before each sleep
    failures = []
    for number in range(60):
        try:
            await make_instance("sample", f"demo{number}")
        except Exception as exc:
            failures.append(repr(exc)[:120])
    assert failures == []


# -- check_declarations -------------------------------------------------------------------


def connector_type(description: str = "For a test.", **members: Any) -> type[Connector]:
    return type(
        "Throwaway", (Connector,), {"slug": "throwaway", "title": "Throwaway", "description": description, **members}
    )


async def find_documented(self: Any, q: Annotated[str, Param("Text searched", example="mairie")]) -> list[str]:
    return []


async def find_undocumented(self: Any, q: Annotated[str | None, Param(example="mairie")] = None) -> list[str]:
    return []


async def find_without_example(self: Any, q: Annotated[str, Param("Text searched")]) -> list[str]:
    return []


async def find_bare(self: Any, q: str) -> list[str]:
    return []


async def item(self: Any, n: Annotated[int, Param("Item number", example=3)]) -> int:
    return n


async def store(self: Any, body: dict[str, Any]) -> dict[str, Any]:
    return body


def test_declarations_of_the_sample_and_the_example_plugin_are_complete():
    assert check_declarations(Sample) == []
    assert check_declarations(discover_types(allow=["opening-hours"])["opening-hours"]) == []
    assert check_declarations(connector_type(find=endpoint(find_documented, description="Finds."))) == []


@pytest.mark.parametrize(
    ("function", "problems"),
    [
        (find_undocumented, ["endpoint 'find': parameter 'q' has no description"]),
        (find_without_example, ["endpoint 'find': required parameter 'q' has no example value"]),
        (
            find_bare,
            [
                "endpoint 'find': parameter 'q' has no description",
                "endpoint 'find': required parameter 'q' has no example value",
            ],
        ),
    ],
)
def test_declarations_report_undocumented_parameters(function, problems):
    assert check_declarations(connector_type(find=endpoint(function, name="find", description="Finds."))) == problems


def test_declarations_report_an_endpoint_without_description():
    cls = connector_type(find=endpoint(find_documented, description=""))
    assert check_declarations(cls) == ["endpoint 'find_documented' has no description"]


def test_declarations_report_a_pattern_that_needs_an_example_pattern():
    pattern = r"^(?P<n>\d+)(/|\.json)$"  # more than literal text and named groups
    cls = connector_type(item=endpoint(item, description="One item.", pattern=pattern))
    assert check_declarations(cls) == [
        rf"endpoint 'item' ({pattern}) has a pattern that is not a plain path and no example_pattern"
    ]
    fixed = connector_type(item=endpoint(item, description="One item.", pattern=pattern, example_pattern="{n}/"))
    assert check_declarations(fixed) == []


def test_declarations_accept_a_plain_pattern_without_example_pattern():
    cls = connector_type(item=endpoint(item, description="One item.", pattern=r"^(?P<n>\d+)/children/$"))
    assert check_declarations(cls) == []


def test_declarations_report_an_invalid_body_schema():
    cls = connector_type(store=endpoint(store, description="Stores.", methods=["post"], body={"type": "nonsense"}))
    [problem] = check_declarations(cls)
    assert problem.startswith("endpoint 'store': body schema is not valid JSON Schema: 'nonsense' is not valid")
    valid = connector_type(store=endpoint(store, description="Stores.", methods=["post"], body={"type": "object"}))
    assert check_declarations(valid) == []


def test_declarations_report_type_level_gaps():
    from pydantic import BaseModel, Field

    class Config(BaseModel):
        url: str = Field(description="Where the application is.")
        login: str = ""

    cls = connector_type(description="", Config=Config)
    assert check_declarations(cls) == [
        "configuration field 'login' has no description",
        "the type has no description",
        "the type declares no endpoint",
    ]


# -- check_conformance ----------------------------------------------------------------------


def test_error_classes_are_the_whole_tree():
    classes = error_classes()
    assert {
        "passerelle.envelope.HubError",
        "passerelle.envelope.APIError",
        "passerelle.envelope.UpstreamError",
        "passerelle.envelope.UpstreamUnavailable",
        "passerelle.envelope.WrongParameter",
        "passerelle.envelope.InvalidBody",
        "passerelle.envelope.PermissionDenied",
        "passerelle.envelope.NotFound",
        "passerelle.envelope.InternalError",
        "tests.passerelle.test_testing.OwnError",  # subclasses defined by connectors belong to it
    } <= classes
    assert "myapp.errors.Oops" not in classes


async def test_conformance_flags_every_broken_answer(make_instance, hub_client):
    connector = await make_instance("misbehaving", "demo")
    problems = await check_conformance(hub_client, connector)
    problems = [re.sub(r"request id \w+", "request id …", p) for p in problems]
    assert problems == [
        "example call GET /misbehaving/demo/bare/: no envelope",
        "example call GET /misbehaving/demo/crash/: HTTP 500 (internal error (request id …))",
        "example call GET /misbehaving/demo/foreign/: err_class 'myapp.errors.Oops' is not in the hub's error tree",
        "example call GET /misbehaving/demo/nodata/: success envelope without 'data'",
        "example call GET /misbehaving/demo/teapot/: err 0 with HTTP 418",
        "example call GET /misbehaving/demo/terse/: error envelope without ['err_class', 'err_desc']",
        "example call GET /misbehaving/demo/text/: answered text/plain, not JSON",
    ]


async def test_conformance_of_the_sample(make_instance, hub_client):
    connector = await make_instance("sample", "demo")
    problems = await check_conformance(hub_client, connector)
    assert [re.sub(r"request id \w+", "request id …", p) for p in problems] == [
        "example call GET /sample/demo/crash/: HTTP 500 (internal error (request id …))"
    ]
