"""The response cache through real HTTP calls: the Sample connector's cached endpoints
ask a real aiohttp application on 127.0.0.1 that counts its calls. Time is moved
forward with a clock given to the cache, never slept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from passerelle import metrics
from passerelle.cache import Entry, MemoryBackend, ResponseCache, normalised_query
from passerelle.hub import HUB
from passerelle.management import Manager
from passerelle.testing import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALICE = "a1a1a1a1-0000-4000-8000-000000000001"
BOB = "b0b0b0b0-0000-4000-8000-000000000002"
STALE_WARNING = '110 - "Response is Stale"'
DURATION = 60  # the Sample's cached endpoints' cache_duration
STALE = 86400  # the default cache_stale_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Application:
    """The business application: echoes ``q`` and ``NameID``, numbers its answers,
    and can be told to fail (an HTTP error, or nonsense that the outbound client does
    not retry), to refuse, or to hold its answers until released."""

    calls: int = 0
    status: int = 200
    nonsense: bool = False
    refuse: str | None = None
    size: int = 0
    gate: asyncio.Event | None = None
    received: list[dict[str, str]] = field(default_factory=list)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.received.append(dict(request.query))
        if self.gate is not None:
            await self.gate.wait()
        if self.status != 200:
            return web.Response(status=self.status, text="down for maintenance")
        if self.nonsense:
            return web.Response(text="<html>down for maintenance</html>", content_type="text/html")
        if self.refuse is not None:
            return web.json_response({"refuse": self.refuse})
        answer: dict[str, Any] = {"q": request.query.get("q"), "NameID": request.query.get("NameID"), "n": self.calls}
        if self.size:
            answer["padding"] = "x" * self.size
        return web.json_response(answer)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def application() -> AsyncIterator[Application]:
    app = Application()
    web_app = web.Application()
    web_app.router.add_get("/cached", app.handle)
    app.server = TestServer(web_app, host="127.0.0.1")
    await app.server.start_server()
    yield app
    if app.gate is not None:
        app.gate.set()
    await app.server.close()


@pytest.fixture
def clock(hub_app: web.Application) -> Clock:
    clock = Clock()
    hub_app[HUB].cache.clock = clock
    return clock


@pytest.fixture
async def sample(make_instance, application: Application, clock: Clock):
    return await make_instance("sample", "demo", config={"upstream_url": application.url})


async def call(client, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    response = await client.get(f"/sample/demo/{path}", **kwargs)
    body = await response.json() if response.content_type == "application/json" else await response.text()
    return response.status, dict(response.headers), body


def cache_events(outcome: str, endpoint: str = "cached") -> float:
    labels = {"instance": "sample/demo", "endpoint": endpoint, "result": outcome}
    return metrics.REGISTRY.get_sample_value("passerelle_cache_total", labels) or 0.0


# -- hit, miss, expiry -------------------------------------------------------------------


async def test_fresh_hit_then_expiry(hub_client, sample, application, clock):
    before = {outcome: cache_events(outcome) for outcome in ("hit", "miss", "stale")}
    status, headers, body = await call(hub_client, "cached?q=musee")
    assert (status, headers["X-Cache"], body) == (200, "miss", {"err": 0, "data": {"q": "musee", "NameID": "", "n": 1}})
    assert "Age" not in headers and "Warning" not in headers

    clock.advance(DURATION - 1)
    status, headers, body = await call(hub_client, "cached?q=musee")
    assert (status, headers["X-Cache"], headers["Age"], body["data"]["n"]) == (200, "hit", str(DURATION - 1), 1)
    assert application.calls == 1

    clock.advance(2)  # past the cache duration: asked again
    status, headers, body = await call(hub_client, "cached?q=musee")
    assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "miss", 2)
    status, headers, body = await call(hub_client, "cached?q=musee")
    assert (headers["X-Cache"], body["data"]["n"]) == ("hit", 2)
    assert application.calls == 2

    after = {outcome: cache_events(outcome) - before[outcome] for outcome in before}
    assert after == {"hit": 2, "miss": 2, "stale": 0}


async def test_head_is_answered_from_the_cache(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    response = await hub_client.head("/sample/demo/cached?q=a")
    assert (response.status, response.headers["X-Cache"]) == (200, "hit")
    assert application.calls == 1


async def test_envelope_extras_and_raw_answers_are_cached_as_they_were(hub_client, sample, application, clock):
    for _ in range(2):
        status, headers, body = await call(hub_client, "cached-result")
        assert (status, body) == (200, {"err": 0, "data": {"q": "", "NameID": "", "n": 1}, "source": "upstream"})
        status, headers, body = await call(hub_client, "cached-raw")
        assert (status, body) == (200, {"q": "", "NameID": "", "n": 2})
    assert headers["X-Cache"] == "hit"
    assert application.calls == 2


# -- the key ---------------------------------------------------------------------------


async def test_parameter_order_and_authentication_parameters_do_not_matter(hub_client, sample, application, clock):
    await call(hub_client, f"cached?q=a&NameID={ALICE}")
    variants = [
        f"cached?NameID={ALICE}&q=a",
        f"cached?q=a&NameID={ALICE}&apikey=whatever",
        f"cached?orig=wcs.example.org&algo=sha256&timestamp=2026-11-28T10%3A00%3A00Z&nonce=abc&signature=xyz"
        f"&NameID={ALICE}&q=a",
    ]
    for path in variants:
        status, headers, body = await call(hub_client, path)
        assert (status, headers["X-Cache"], body["data"]["n"]) == (200, "hit", 1), path
    assert application.calls == 1
    # A parameter that changes the question is another entry.
    status, headers, body = await call(hub_client, f"cached?q=b&NameID={ALICE}")
    assert (headers["X-Cache"], body["data"]["q"]) == ("miss", "b")
    assert application.calls == 2


async def test_values_cannot_forge_another_key(hub_client, sample, application, clock):
    await call(hub_client, f"cached?q=a&NameID={BOB}")
    # The same characters, split differently between parameters: other questions.
    for path in (f"cached?q=a%26NameID%3D{BOB}", f"cached?q=a%22%2C%22NameID&NameID={BOB}", "cached?q=%ED%A0%80"):
        status, headers, _ = await call(hub_client, path)
        assert (status, headers["X-Cache"]) == (200, "miss"), path
    assert application.calls == 4


async def test_jsonp_callback_is_applied_after_the_cache(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    response = await hub_client.get("/sample/demo/cached?q=a&callback=show")
    assert (response.status, response.content_type, response.headers["X-Cache"]) == (
        200,
        "application/javascript",
        "hit",
    )
    assert await response.text() == 'show({"err":0,"data":{"q":"a","NameID":"","n":1}});'
    _status, headers, body = await call(hub_client, "cached?q=a&callback=other")
    assert (headers["X-Cache"], body) == ("hit", 'other({"err":0,"data":{"q":"a","NameID":"","n":1}});')
    assert application.calls == 1


async def test_each_citizen_has_its_own_entries(hub_client, sample, application, clock):
    for name_id in (ALICE, BOB, ALICE, BOB):
        status, _, body = await call(hub_client, f"cached?q=a&NameID={name_id}")
        assert (status, body["data"]["NameID"]) == (200, name_id)
    assert application.calls == 2
    _status, headers, body = await call(hub_client, "cached?q=a")  # no NameID at all: another entry
    assert (headers["X-Cache"], body["data"]["NameID"]) == ("miss", "")


def test_normalised_query_keeps_repeated_values_in_order():
    from multidict import MultiDict

    query = MultiDict([("tag", "b"), ("q", "x"), ("tag", "a"), ("callback", "cb"), ("nonce", "1"), ("NameID", "n")])
    assert normalised_query(query) == [("NameID", "n"), ("q", "x"), ("tag", "b"), ("tag", "a")]
    assert normalised_query(MultiDict([("tag", "a"), ("tag", "b")])) != normalised_query(
        MultiDict([("tag", "b"), ("tag", "a")])
    )


async def test_keys_never_hold_credentials_nor_name_ids(hub_app, hub_client, sample, application, clock):
    await call(hub_client, f"cached?q=a&NameID={ALICE}&apikey=top-secret-key")
    backend = hub_app[HUB].cache.backend
    assert isinstance(backend, MemoryBackend)
    keys = " ".join(backend._entries)
    assert keys.startswith("passerelle:cache:sample/demo:")
    for value in (ALICE, "top-secret-key", "q=a"):
        assert value not in keys


async def test_a_reconfigured_instance_does_not_serve_old_answers(
    hub_app, hub_client, make_instance, sample, application, clock
):
    await call(hub_client, "cached?q=a")
    await call(hub_client, "cached?q=b")
    backend = hub_app[HUB].cache.backend
    assert len(backend) == 2
    await make_instance("sample", "demo", config={"upstream_url": application.url, "greeting": "bonjour"})
    # The old configuration's entries are gone from memory, and not served.
    assert len(backend) == 0
    _status, headers, body = await call(hub_client, "cached?q=a")
    assert (headers["X-Cache"], body["data"]["n"]) == ("miss", 3)


async def test_a_changed_secret_is_a_new_configuration(hub_app, make_instance, application):
    cache = hub_app[HUB].cache
    first = await make_instance("sample", "demo", config={"upstream_url": application.url, "password": "one"})
    second = await make_instance("sample", "demo", config={"upstream_url": application.url, "password": "two"})
    assert first is not second and second.config.password.get_secret_value() == "two"
    assert cache.generation(first) != cache.generation(second)
    assert "two" not in cache.generation(second)


# -- who may get a cached answer --------------------------------------------------------


async def test_a_caller_without_the_right_is_never_answered_from_the_cache(
    hub_app, hub_client, make_instance, application, clock
):
    await make_instance("sample", "demo", config={"upstream_url": application.url}, access=None)
    hub = hub_app[HUB]
    manager = Manager(hub.sessionmaker, hub.types, hub.registry.secrets)

    async def grant(*perms: str) -> None:
        await manager.import_document(
            {
                "apiusers": [{"username": "integrator", "keytype": "API", "key": "right-key"}],
                "instances": [
                    {
                        "type": "sample",
                        "slug": "demo",
                        "title": "Demo",
                        "config": {"upstream_url": application.url},
                        "access": [{"apiuser": "integrator", "perm": perm} for perm in perms],
                    }
                ],
            }
        )
        await hub.registry.reload()

    await grant("can_access", "can_admin")
    for path in ("cached?q=a", "cached-admin"):
        status, headers, body = await call(hub_client, f"{path}{'&' if '?' in path else '?'}apikey=right-key")
        assert (status, headers["X-Cache"]) == (200, "miss")
    assert application.calls == 2

    for path in ("cached?q=a", "cached?q=a&apikey=wrong-key", "cached-admin"):
        status, headers, body = await call(hub_client, path)
        assert status in (401, 403) and body["err"] == 1, path
        assert "X-Cache" not in headers and body["data"] is None, path

    await grant("can_access")  # the right to cached-admin is taken back
    status, headers, body = await call(hub_client, "cached-admin?apikey=right-key")
    assert (status, body["err_class"]) == (403, "passerelle.envelope.PermissionDenied")
    assert "X-Cache" not in headers
    status, headers, body = await call(hub_client, "cached?q=a&apikey=right-key")
    assert (status, headers["X-Cache"]) == (200, "hit")
    assert application.calls == 2


async def test_invalid_parameters_are_refused_before_the_cache(hub_client, sample, application, clock):
    status, headers, body = await call(hub_client, "cached?q=a&unknown=1")
    assert (status, body["err_class"]) == (400, "passerelle.envelope.WrongParameter")
    assert "X-Cache" not in headers and application.calls == 0


# -- single flight ---------------------------------------------------------------------


async def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    """Poll a condition; the bound only says the test did not hang."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_concurrent_identical_misses_make_one_call(hub_app, hub_client, sample, application, clock):
    cache = hub_app[HUB].cache
    application.gate = asyncio.Event()
    requests = [asyncio.create_task(call(hub_client, f"cached?q=a&NameID={ALICE}")) for _ in range(50)]
    # Every call is inside the cache, waiting, before the application answers.
    await wait_for(lambda: cache.waiting == 50 and application.calls >= 1, "50 calls waiting")
    application.gate.set()
    answers = await asyncio.gather(*requests)
    assert application.calls == 1
    assert {(status, headers["X-Cache"], body["data"]["n"]) for status, headers, body in answers} == {(200, "miss", 1)}
    assert cache.waiting == 0
    _status, headers, _body = await call(hub_client, f"cached?q=a&NameID={ALICE}")
    assert (headers["X-Cache"], application.calls) == ("hit", 1)


async def test_different_misses_do_not_wait_for_each_other(hub_app, hub_client, sample, application, clock):
    cache = hub_app[HUB].cache
    application.gate = asyncio.Event()
    requests = [asyncio.create_task(call(hub_client, f"cached?q={q}")) for q in ("a", "b", "c")]
    await wait_for(lambda: application.calls == 3 and cache.waiting == 3, "three calls")
    application.gate.set()
    answers = await asyncio.gather(*requests)
    assert sorted(body["data"]["q"] for _, _, body in answers) == ["a", "b", "c"]


async def test_a_shared_failure_reaches_every_waiting_call(hub_app, hub_client, sample, application, clock):
    cache = hub_app[HUB].cache
    application.gate = asyncio.Event()
    application.nonsense = True
    requests = [asyncio.create_task(call(hub_client, "cached?q=a")) for _ in range(10)]
    await wait_for(lambda: cache.waiting == 10 and application.calls >= 1, "10 calls waiting")
    application.gate.set()
    answers = await asyncio.gather(*requests)
    assert {(status, body["err_class"]) for status, _, body in answers} == {(502, "passerelle.envelope.UpstreamError")}
    assert application.calls == 1
    application.nonsense = False
    status, headers, _body = await call(hub_client, "cached?q=a")  # failures are not cached
    assert (status, headers["X-Cache"]) == (200, "miss")


async def test_a_caller_going_away_does_not_cancel_the_shared_call(hub_app, hub_client, sample, application, clock):
    cache = hub_app[HUB].cache
    application.gate = asyncio.Event()
    first = asyncio.create_task(call(hub_client, "cached?q=a"))
    await wait_for(lambda: cache.waiting == 1 and application.calls == 1, "the first call")
    second = asyncio.create_task(call(hub_client, "cached?q=a"))
    await wait_for(lambda: cache.waiting == 2, "the second call")
    first.cancel()  # the client disconnects; the hub's handler of that request is cancelled
    await wait_for(lambda: cache.waiting == 1, "the first call to go away")
    application.gate.set()
    status, _headers, body = await second
    assert (status, body["data"]["n"], application.calls) == (200, 1, 1)


# -- stale-if-error --------------------------------------------------------------------


async def test_stale_answer_when_the_application_fails(hub_client, sample, application, clock):
    before = cache_events("stale")
    fresh = await call(hub_client, "cached?q=a")
    application.nonsense = True
    clock.advance(DURATION + 10)
    with capture_logs() as logs:
        status, headers, body = await call(hub_client, "cached?q=a")
    assert status == 200
    assert body == {"stale": True, **fresh[2]}
    assert (headers["X-Cache"], headers["Warning"], headers["Age"]) == ("stale", STALE_WARNING, str(DURATION + 10))
    assert application.calls == 2  # the application was asked
    assert cache_events("stale") - before == 1
    assert any(log["event"] == "the application failed, serving a stale answer" for log in logs)

    # Once the application is back, the fresh answer replaces the stale one.
    application.nonsense = False
    status, headers, body = await call(hub_client, "cached?q=a")
    assert (headers["X-Cache"], body["data"]["n"], "stale" in body) == ("miss", 3, False)


async def test_stale_answer_when_the_application_answers_an_http_error(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    application.status = 503
    clock.advance(DURATION)
    status, headers, body = await call(hub_client, "cached?q=a")
    assert (status, headers["X-Cache"], body["stale"], body["data"]["n"]) == (200, "stale", True, 1)
    assert application.calls > 1  # asked (maybe more than once: the outbound client retries a GET)


async def test_stale_answers_keep_their_form(hub_client, sample, application, clock):
    await call(hub_client, "cached-result")
    await call(hub_client, "cached-raw")
    application.nonsense = True
    clock.advance(DURATION)
    status, headers, body = await call(hub_client, "cached-result")
    assert (status, headers["X-Cache"]) == (200, "stale")
    assert body == {"err": 0, "data": {"q": "", "NameID": "", "n": 1}, "source": "upstream", "stale": True}
    status, headers, body = await call(hub_client, "cached-raw")
    # A raw answer has no envelope to flag: its headers say it is stale.
    assert (status, headers["X-Cache"], headers["Warning"], body) == (
        200,
        "stale",
        STALE_WARNING,
        {"q": "", "NameID": "", "n": 2},
    )
    response = await hub_client.get("/sample/demo/cached-result?callback=cb")
    assert response.headers["X-Cache"] == "stale"
    assert (await response.text()).startswith("cb(") and '"stale":true' in await response.text()


async def test_beyond_the_stale_window_the_error_is_answered(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    application.nonsense = True
    clock.advance(DURATION + STALE - 1)
    assert (await call(hub_client, "cached?q=a"))[1]["X-Cache"] == "stale"
    clock.advance(2)
    status, headers, body = await call(hub_client, "cached?q=a")
    assert (status, body["err"], body["err_class"]) == (502, 1, "passerelle.envelope.UpstreamError")
    assert "X-Cache" not in headers


async def test_an_unreachable_application_is_an_upstream_failure_too(
    hub_client, make_instance, sample, application, clock
):
    await call(hub_client, "cached?q=a")
    clock.advance(DURATION)
    await application.server.close()
    status, headers, body = await call(hub_client, "cached?q=a")
    assert (status, headers["X-Cache"], body["stale"], body["data"]["n"]) == (200, "stale", True, 1)


async def test_business_errors_are_never_hidden_by_a_stale_answer(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    application.refuse = "no such family"
    clock.advance(DURATION)
    status, headers, body = await call(hub_client, "cached?q=a")
    assert (status, body["err"], body["err_class"], body["err_desc"]) == (
        200,
        1,
        "passerelle.envelope.APIError",
        "no such family",
    )
    assert "X-Cache" not in headers


async def test_no_stale_answers_when_the_stale_duration_is_zero(hub_app, hub_client, sample, application, clock):
    hub_app[HUB].cache.stale_duration = 0
    await call(hub_client, "cached?q=a")
    application.nonsense = True
    clock.advance(DURATION)
    status, _headers, _body = await call(hub_client, "cached?q=a")
    assert status == 502


# -- what is never cached ----------------------------------------------------------------


async def test_streamed_answers_are_never_cached(hub_client, sample, application, clock):
    for n in (1, 2):
        status, headers, body = await call(hub_client, "cached-stream")
        assert (status, body) == (200, {"streamed": {"q": "", "NameID": "", "n": n}})
        assert "X-Cache" not in headers


async def test_endpoints_without_a_duration_are_not_cached(hub_client, sample, application):
    status, headers, _ = await call(hub_client, "hello?name=Camille")
    assert status == 200 and "X-Cache" not in headers


# -- size bound ------------------------------------------------------------------------


async def test_the_memory_cache_evicts_the_least_recently_used(hub_app, hub_client, sample, application, clock):
    backend = hub_app[HUB].cache.backend
    application.size = 1000
    await call(hub_client, "cached?q=a")
    one = backend.bytes
    assert 1000 < one < 1200
    backend.max_bytes = 2 * one + 10  # room for two answers
    await call(hub_client, "cached?q=b")
    await call(hub_client, "cached?q=a")  # a is now the most recently used
    await call(hub_client, "cached?q=c")  # b goes
    assert (len(backend), backend.evictions) == (2, 1)
    assert backend.bytes <= backend.max_bytes
    assert (await call(hub_client, "cached?q=a"))[1]["X-Cache"] == "hit"
    assert (await call(hub_client, "cached?q=b"))[1]["X-Cache"] == "miss"
    assert application.calls == 4

    application.size = 10_000  # larger than the whole cache: served, not kept
    status, headers, body = await call(hub_client, "cached?q=big")
    assert (status, headers["X-Cache"], len(body["data"]["padding"])) == (200, "miss", 10_000)
    assert (await call(hub_client, "cached?q=big"))[1]["X-Cache"] == "miss"
    assert backend.bytes <= backend.max_bytes


async def test_expired_entries_leave_memory():
    clock = Clock()
    backend = MemoryBackend(10_000, clock)
    from passerelle.cache import CacheKey

    key = CacheKey("passerelle:cache:t/s:-:1", "-", "t/s", "e", "g")
    await backend.put(key, Entry(b"{}", True, clock()), ttl=10)
    clock.advance(9)
    assert await backend.get(key) is not None
    clock.advance(2)
    assert await backend.get(key) is None
    assert (len(backend), backend.bytes) == (0, 0)


def test_a_zero_size_disables_the_memory_cache(hub_settings):
    cache = ResponseCache.from_settings(hub_settings.model_copy(update={"cache_max_bytes": 0}))
    assert not cache.enabled


async def test_a_disabled_cache_is_not_consulted(hub_app):
    from passerelle.dispatch import EndpointHandler

    disabled = ResponseCache(hub_app[HUB].settings, None, secret=b"k")
    assert EndpointHandler(hub_app[HUB].registry, cache=disabled).cache is None


def test_entries_survive_their_encoding():
    entry = Entry(b'{"err":0,"data":"\xc3\xa9\\n"}', True, 1_800_000_000.123456)
    assert Entry.decode(entry.encode()) == entry
    assert Entry.decode(Entry(b"[]", False, 1.0).encode()) == Entry(b"[]", False, 1.0)
    assert Entry.decode(b"garbage") is None


# -- citizens and operations ---------------------------------------------------------------


async def citizen(client, method: str, name_id: str) -> tuple[int, Any]:
    response = await client.request(method, f"/manage/api/citizens/{quote(name_id, safe='')}/", headers=ADMIN)
    return response.status, await response.json()


async def test_erasing_a_citizen_removes_their_cached_answers(hub_client, sample, application, clock):
    for path in (f"cached?q=a&NameID={ALICE}", f"cached?q=b&NameID={ALICE}", f"cached?q=a&NameID={BOB}", "cached"):
        await call(hub_client, path)
    status, payload = await citizen(hub_client, "GET", ALICE)
    assert (status, payload["data"]["response cache"]) == (200, 2)

    status, payload = await citizen(hub_client, "DELETE", ALICE)
    assert (status, payload["data"]["removed"]["response cache"], payload["data"]["failed"]) == (200, 2, [])
    assert (await citizen(hub_client, "GET", ALICE))[1]["data"]["response cache"] == 0

    assert (await call(hub_client, f"cached?q=a&NameID={ALICE}"))[1]["X-Cache"] == "miss"
    assert (await call(hub_client, f"cached?q=a&NameID={BOB}"))[1]["X-Cache"] == "hit"
    assert (await call(hub_client, "cached"))[1]["X-Cache"] == "hit"


async def test_an_answer_in_flight_during_an_erasure_is_not_kept(hub_app, hub_client, sample, application, clock):
    application.gate = asyncio.Event()
    request = asyncio.create_task(call(hub_client, f"cached?q=a&NameID={ALICE}"))
    await wait_for(lambda: hub_app[HUB].cache.waiting == 1 and application.calls == 1, "the call in flight")
    assert (await citizen(hub_client, "DELETE", ALICE))[0] == 200
    application.gate.set()
    status, headers, body = await request
    assert (status, headers["X-Cache"], body["data"]["NameID"]) == (200, "miss", ALICE)
    assert (await citizen(hub_client, "GET", ALICE))[1]["data"]["response cache"] == 0
    application.gate = None
    assert (await call(hub_client, f"cached?q=a&NameID={ALICE}"))[1]["X-Cache"] == "miss"


async def test_admin_flush(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    await call(hub_client, "cached?q=b")
    response = await hub_client.delete("/manage/api/cache/")
    assert response.status == 401
    response = await hub_client.delete("/manage/api/cache/", headers=ADMIN)
    assert (response.status, await response.json()) == (200, {"err": 0, "data": {"removed": 2}})
    assert (await call(hub_client, "cached?q=a"))[1]["X-Cache"] == "miss"


async def test_memory_gauges(hub_client, sample, application, clock):
    await call(hub_client, "cached?q=a")
    response = await hub_client.get("/metrics")
    text = await response.text()
    assert "passerelle_cache_memory_entries 1.0" in text
    assert "passerelle_cache_waiting 0.0" in text
