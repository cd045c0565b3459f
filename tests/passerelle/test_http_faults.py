"""Fault drills: the outbound client against a real aiohttp upstream on 127.0.0.1 that is
slow, fails (500/503), sheds load (429 with Retry-After), resets connections or is down.

Every drill runs under ``asyncio.timeout`` so that a hang fails the test instead of
stalling the suite, and checks that no call outlives its deadline (with 1 s of slack).
Attempts are counted on the server's side.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel, ConfigDict, Field

from passerelle import Connector, HttpConfig, Param, endpoint
from passerelle.breaker import BreakerState
from passerelle.envelope import BreakerOpen, UpstreamError, UpstreamUnavailable
from passerelle.http import HttpClient, HttpOptions, options_from_config, upstream_of
from passerelle.testing import ADMIN_TOKEN

SLACK = 1.0
Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]

# -- the upstream ----------------------------------------------------------------------


def ok(payload: Any = None) -> Behaviour:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True} if payload is None else payload)

    return answer


def status(code: int, headers: dict[str, str] | None = None) -> Behaviour:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": code}, status=code, headers=headers)

    return answer


def slow(seconds: float) -> Behaviour:
    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({"late": True})

    return answer


def reset() -> Behaviour:
    """The connection is dropped before any answer."""

    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError

    return answer


def cut() -> Behaviour:
    """Headers and the start of the body, then the connection is dropped."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000", "Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"partial": ')
        await asyncio.sleep(0.02)
        assert request.transport is not None
        request.transport.abort()
        return response

    return answer


class Upstream:
    """Scripted behaviours per path, served in order (the last one repeats); ``hits``
    counts the requests each path received."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Behaviour]] = {}
        self.hits: Counter[str] = Counter()
        self.server: TestServer | None = None

    def script(self, path: str, *behaviours: Behaviour) -> None:
        self.scripts[path] = list(behaviours)
        self.hits[path] = 0

    def url(self, path: str = "") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    @property
    def key(self) -> str:
        return upstream_of(self.url("/"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        served = self.hits[path]
        self.hits[path] += 1
        behaviours = self.scripts.get(path) or [status(404)]
        return await behaviours[min(served, len(behaviours) - 1)](request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    found = Upstream()
    await found.start()
    yield found
    await found.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FAST = dict(backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., HttpClient]]:
    made: list[HttpClient] = []

    def make(**options: Any) -> HttpClient:
        client = HttpClient("drill/client", HttpOptions(**{**FAST, **options}))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def timed(call: Awaitable[Any], deadline: float) -> tuple[Any, float]:
    """(result or raised HubError, seconds taken); fails if the call outlives its deadline."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(deadline + 3):
        try:
            result: Any = await call
        except (UpstreamError, UpstreamUnavailable) as exc:
            result = exc
    took = loop.time() - started
    assert took <= deadline + SLACK, f"the call took {took:.2f} s, its deadline is {deadline} s"
    return result, took


# -- slow upstreams --------------------------------------------------------------------


async def test_a_slow_upstream_fails_at_the_deadline(upstream, make_client):
    upstream.script("/slow", slow(10))
    client = make_client(total_timeout=0.5)
    error, took = await timed(client.get(upstream.url("/slow")), 0.5)
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "the application did not answer in 0.5 s"
    assert took >= 0.5
    assert upstream.hits["/slow"] == 1  # no time left for another attempt


async def test_read_timeouts_are_retried_within_the_deadline(upstream, make_client):
    upstream.script("/slow", slow(10))
    client = make_client(total_timeout=2, read_timeout=0.2)
    error, _ = await timed(client.get(upstream.url("/slow")), 2)
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "the application sent nothing for 0.2 s"
    assert upstream.hits["/slow"] == 3


async def test_a_per_call_timeout(upstream, make_client):
    upstream.script("/slow", slow(10))
    client = make_client(total_timeout=20)
    error, _ = await timed(client.get(upstream.url("/slow"), timeout=0.3), 0.3)
    assert isinstance(error, UpstreamUnavailable)


@pytest.mark.parametrize(
    "behaviours",
    [
        [slow(0.6), slow(0.6), slow(0.6), slow(0.6)],
        [status(503), slow(0.6), status(503), ok()],
        [reset(), cut(), slow(5)],
        [status(429, {"Retry-After": "0"}), slow(0.5), slow(0.5)],
    ],
    ids=["slow", "mixed", "resets-then-slow", "retry-after-then-slow"],
)
async def test_no_call_outlives_its_deadline(upstream, make_client, behaviours):
    upstream.script("/p", *behaviours)
    client = make_client(total_timeout=1, read_timeout=0.45, retries=5)
    await timed(client.get(upstream.url("/p")), 1)


# -- failures and retries ---------------------------------------------------------------


async def test_get_is_retried_on_503(upstream, make_client):
    upstream.script("/flaky", status(503), ok({"n": 1}))
    response, _ = await timed(make_client().get(upstream.url("/flaky")), 25)
    assert response.json() == {"n": 1}
    assert upstream.hits["/flaky"] == 2


async def test_get_gives_up_after_its_retries(upstream, make_client):
    upstream.script("/down", status(500))
    error, _ = await timed(make_client(retries=2).get(upstream.url("/down")), 25)
    assert isinstance(error, UpstreamError) and not isinstance(error, UpstreamUnavailable)
    assert error.message == "the application answered HTTP 500"
    assert upstream.hits["/down"] == 3


@pytest.mark.parametrize("first", [reset, cut], ids=["reset-before-answer", "cut-mid-answer"])
async def test_get_is_retried_on_a_connection_reset(upstream, make_client, first):
    upstream.script("/reset", first(), ok())
    response, _ = await timed(make_client().get(upstream.url("/reset")), 25)
    assert response.json() == {"ok": True}
    assert upstream.hits["/reset"] == 2


async def test_connection_resets_end_as_unavailable(upstream, make_client):
    upstream.script("/reset", cut())
    error, _ = await timed(make_client().get(upstream.url("/reset")), 25)
    assert isinstance(error, UpstreamUnavailable)
    assert "cut the connection" in error.message
    assert upstream.hits["/reset"] == 3


async def test_post_is_never_retried(upstream, make_client):
    upstream.script("/order", status(503), ok())
    upstream.script("/reset", reset(), ok())
    client = make_client()
    error, _ = await timed(client.post(upstream.url("/order"), json={"n": 1}), 25)
    assert isinstance(error, UpstreamError)
    assert upstream.hits["/order"] == 1
    error, _ = await timed(client.post(upstream.url("/reset"), json={"n": 1}), 25)
    assert isinstance(error, UpstreamUnavailable)
    assert upstream.hits["/reset"] == 1


async def test_post_is_retried_when_declared_idempotent(upstream, make_client):
    upstream.script("/query", status(503), ok({"found": 1}))
    response, _ = await timed(make_client().post(upstream.url("/query"), json={"q": 1}, idempotent=True), 25)
    assert response.json() == {"found": 1}
    assert upstream.hits["/query"] == 2


async def test_retries_zero_for_one_call(upstream, make_client):
    upstream.script("/once", status(503), ok())
    error, _ = await timed(make_client().get(upstream.url("/once"), retries=0), 25)
    assert isinstance(error, UpstreamError)
    assert upstream.hits["/once"] == 1


async def test_a_down_upstream_fails_fast(make_client, closed_port):
    client = make_client(total_timeout=2)
    error, took = await timed(client.get(f"http://127.0.0.1:{closed_port}/x"), 2)
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "the application cannot be reached"
    assert took < 1
    assert client.breakers[f"http://127.0.0.1:{closed_port}"].consecutive_failures == 3


async def test_4xx_answers_are_neither_retried_nor_failures(upstream, make_client):
    upstream.script("/missing", status(404))
    client = make_client()
    response, _ = await timed(client.get(upstream.url("/missing")), 25)
    assert response.status == 404
    assert upstream.hits["/missing"] == 1
    assert client.breakers[upstream.key].consecutive_failures == 0


# -- Retry-After -----------------------------------------------------------------------


async def test_retry_after_is_honoured(upstream, make_client):
    upstream.script("/busy", status(429, {"Retry-After": "1"}), ok())
    response, took = await timed(make_client().get(upstream.url("/busy")), 25)
    assert response.status == 200
    assert upstream.hits["/busy"] == 2
    assert took >= 1


async def test_a_long_retry_after_fails_at_once_saying_when(upstream, make_client):
    upstream.script("/busy", status(429, {"Retry-After": "3600"}), ok())
    error, took = await timed(make_client(retry_after_cap=10).get(upstream.url("/busy")), 25)
    assert isinstance(error, UpstreamUnavailable)
    assert re.search(r"asks to be called again in 3600 s, at \d\d:\d\d:\d\d UTC", error.message), error.message
    assert took < 0.5
    assert upstream.hits["/busy"] == 1


async def test_a_retry_after_beyond_the_deadline_fails_at_once(upstream, make_client):
    upstream.script("/busy", status(503, {"Retry-After": "5"}), ok())
    error, took = await timed(make_client(total_timeout=2, retry_after_cap=10).get(upstream.url("/busy")), 2)
    assert isinstance(error, UpstreamUnavailable)
    assert "in 5 s" in error.message
    assert took < 0.5
    assert upstream.hits["/busy"] == 1


async def test_a_429_to_a_post_says_when_to_retry(upstream, make_client):
    upstream.script("/order", status(429, {"Retry-After": "2"}))
    error, _ = await timed(make_client().post(upstream.url("/order")), 25)
    assert isinstance(error, UpstreamUnavailable)
    assert "in 2 s" in error.message
    assert upstream.hits["/order"] == 1


async def test_a_429_without_retry_after_is_retried_with_backoff(upstream, make_client):
    upstream.script("/busy", status(429))
    error, _ = await timed(make_client().get(upstream.url("/busy")), 25)
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "the application is overloaded (HTTP 429)"
    assert upstream.hits["/busy"] == 3


# -- rate limit ----------------------------------------------------------------------------


def stamped(arrivals: list[float], behaviour: Behaviour) -> Behaviour:
    async def answer(request: web.Request) -> web.StreamResponse:
        arrivals.append(asyncio.get_running_loop().time())
        return await behaviour(request)

    return answer


async def test_a_rate_limit_spaces_concurrent_calls(upstream, make_client):
    # Lower bounds only: a busy machine spaces the calls more, never less.
    arrivals: list[float] = []
    upstream.script("/geocode", stamped(arrivals, ok()))
    client = make_client(rate_limit=20)
    responses = await asyncio.wait_for(asyncio.gather(*(client.get(upstream.url("/geocode")) for _ in range(10))), 10)
    assert [r.status for r in responses] == [200] * 10
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.05 * 0.8, gaps
    assert arrivals[-1] - arrivals[0] >= 9 * 0.05 * 0.9


async def test_a_call_whose_slot_is_past_its_deadline_fails_at_once(upstream, make_client):
    upstream.script("/geocode", ok())
    client = make_client(rate_limit=1)
    assert (await client.get(upstream.url("/geocode"))).status == 200
    # The next slot is a second away; this call has half a second.
    error, took = await timed(client.get(upstream.url("/geocode"), timeout=0.5), 0.5)
    assert isinstance(error, UpstreamUnavailable)
    assert "at most 1 per second" in error.message
    assert took < 0.4
    assert upstream.hits["/geocode"] == 1
    # The refused call did not take the slot: a call with time enough gets it.
    response, _ = await timed(client.get(upstream.url("/geocode")), 5)
    assert response.status == 200


async def test_a_429_retry_after_holds_every_call_to_the_upstream(upstream, make_client):
    arrivals: list[float] = []
    upstream.script("/geocode", stamped(arrivals, status(429, {"Retry-After": "1"})), stamped(arrivals, ok()))
    client = make_client(rate_limit=100)
    first = asyncio.create_task(client.get(upstream.url("/geocode")))
    while not arrivals:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the 429 has been read by now
    second, _ = await timed(client.get(upstream.url("/geocode")), 25)
    assert second.status == 200
    assert (await first).status == 200
    # Nothing reached the upstream during the second it asked for.
    assert all(t - arrivals[0] >= 0.9 for t in arrivals[1:]), arrivals


def test_rate_limit_options_are_checked():
    with pytest.raises(ValueError, match="rate_limit"):
        HttpOptions(rate_limit=0)


# -- the breaker -----------------------------------------------------------------------


async def test_the_breaker_opens_probes_reopens_and_closes(upstream, make_client):
    upstream.script("/x", status(500))
    client = make_client(retries=0, breaker_threshold=3, breaker_open_duration=0.4)
    url = upstream.url("/x")
    for _ in range(3):
        error, _ = await timed(client.get(url), 25)
        assert type(error) is UpstreamError
    breaker = client.breakers[upstream.key]
    assert breaker.state is BreakerState.OPEN
    # Open: answered at once, the application sees nothing.
    error, took = await timed(client.get(url), 25)
    assert isinstance(error, BreakerOpen)
    assert error.status == 503
    assert "the next try is at" in error.message
    assert took < 0.1
    assert upstream.hits["/x"] == 3
    # After the open duration one probe goes; it fails: open again.
    await asyncio.sleep(0.45)
    error, _ = await timed(client.get(url), 25)
    assert type(error) is UpstreamError
    assert upstream.hits["/x"] == 4
    assert breaker.state is BreakerState.OPEN
    error, _ = await timed(client.get(url), 25)
    assert isinstance(error, BreakerOpen)
    assert upstream.hits["/x"] == 4
    # The application is back: the next probe closes the breaker.
    upstream.script("/x", ok())
    await asyncio.sleep(0.45)
    response, _ = await timed(client.get(url), 25)
    assert response.status == 200
    assert breaker.state is BreakerState.CLOSED
    for _ in range(3):
        assert (await client.get(url)).status == 200
    assert upstream.hits["/x"] == 4


async def test_only_one_probe_at_a_time(upstream, make_client):
    upstream.script("/x", status(500))
    client = make_client(retries=0, breaker_threshold=1, breaker_open_duration=0.2)
    url = upstream.url("/x")
    await timed(client.get(url), 25)
    upstream.script("/x", slow(0.3))
    await asyncio.sleep(0.25)
    probe = asyncio.ensure_future(client.get(url))
    await asyncio.sleep(0.05)
    assert client.breakers[upstream.key].state is BreakerState.HALF_OPEN
    error, took = await timed(client.get(url), 25)
    assert isinstance(error, BreakerOpen)
    assert "a probe call is under way" in error.message
    assert took < 0.1
    assert (await probe).status == 200
    assert upstream.hits["/x"] == 1
    assert client.breakers[upstream.key].state is BreakerState.CLOSED


async def test_retries_stop_when_the_breaker_opens(upstream, make_client):
    upstream.script("/x", status(503))
    client = make_client(retries=5, breaker_threshold=2)
    error, _ = await timed(client.get(upstream.url("/x")), 25)
    assert type(error) is UpstreamError  # the application's own failure, not the breaker's
    assert upstream.hits["/x"] == 2


async def test_breakers_are_per_upstream(upstream, make_client, closed_port):
    client = make_client(retries=0, breaker_threshold=1)
    await timed(client.get(f"http://127.0.0.1:{closed_port}/"), 25)
    upstream.script("/x", ok())
    response, _ = await timed(client.get(upstream.url("/x")), 25)
    assert response.status == 200
    states = {b["upstream"]: b["state"] for b in client.breaker_states()}
    assert states == {f"http://127.0.0.1:{closed_port}": "open", upstream.key: "closed"}


async def test_a_cancelled_call_says_nothing_to_the_breaker(upstream, make_client):
    upstream.script("/x", status(500))
    client = make_client(retries=0, breaker_threshold=1, breaker_open_duration=0.1)
    await timed(client.get(upstream.url("/x")), 25)
    upstream.script("/x", slow(5))
    await asyncio.sleep(0.15)
    probe = asyncio.ensure_future(client.get(upstream.url("/x")))
    await asyncio.sleep(0.1)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    upstream.script("/x", ok())
    assert (await client.get(upstream.url("/x"))).status == 200  # the next call may probe


# -- through the hub -------------------------------------------------------------------


class RelayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="Base URL of the application.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Calls to the application.")


class Relay(Connector):
    """Calls its application through self.http, as every connector does."""

    slug = "relay"
    title = "Relay"
    description = "Asks an application."
    Config = RelayConfig

    def http_options(self) -> HttpOptions:
        drill = HttpOptions(total_timeout=2, breaker_threshold=3, breaker_open_duration=0.5, **FAST)
        return options_from_config(self.config, drill)

    @endpoint(description="GET a path of the application.")
    async def fetch(self, path: Annotated[str, Param("Path", example="/x")]) -> Any:
        return (await self.http.get(f"{self.config.url}{path}")).json()

    @endpoint(description="POST to a path of the application.", methods=["post"])
    async def send(self, path: Annotated[str, Param("Path", example="/x")]) -> Any:
        return (await self.http.post(f"{self.config.url}{path}", json={"n": 1})).json()


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "relay": Relay}


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def call(hub_client, method: str, url: str) -> tuple[int, dict[str, Any]]:
    async with asyncio.timeout(2 + 3):
        response = await hub_client.request(method, url)
        return response.status, await response.json()


async def test_through_the_hub_answers_are_envelopes(hub_client, make_instance, upstream, closed_port):
    await make_instance("relay", "demo", config={"url": upstream.url("").rstrip("/")})
    await make_instance("relay", "gone", config={"url": f"http://127.0.0.1:{closed_port}"})
    upstream.script("/ok", ok({"n": 1}))
    upstream.script("/fail", status(500))
    upstream.script("/busy", status(429, {"Retry-After": "3600"}))
    upstream.script("/flaky", status(503), ok({"n": 2}))

    assert await call(hub_client, "GET", "/relay/demo/fetch?path=/ok") == (200, {"err": 0, "data": {"n": 1}})
    assert await call(hub_client, "GET", "/relay/demo/fetch?path=/flaky") == (200, {"err": 0, "data": {"n": 2}})
    status_code, payload = await call(hub_client, "GET", "/relay/demo/fetch?path=/busy")
    assert status_code == 503
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.UpstreamUnavailable"
    assert "3600 s" in payload["err_desc"]
    status_code, payload = await call(hub_client, "POST", "/relay/demo/send?path=/fail")
    assert status_code == 502
    assert payload["err_class"] == "passerelle.envelope.UpstreamError"
    assert upstream.hits["/fail"] == 1
    status_code, payload = await call(hub_client, "GET", "/relay/gone/fetch?path=/x")
    assert status_code == 503
    assert payload["err_class"] == "passerelle.envelope.UpstreamUnavailable"
    assert payload["err_desc"] == "the application cannot be reached"


async def test_through_the_hub_the_breaker_shows_in_the_admin_api_and_the_metrics(hub_client, make_instance, upstream):
    await make_instance("relay", "demo", config={"url": upstream.url("").rstrip("/"), "http": {"retries": 0}})
    upstream.script("/fail", status(500))
    for _ in range(3):
        status_code, payload = await call(hub_client, "GET", "/relay/demo/fetch?path=/fail")
        assert (status_code, payload["err_class"]) == (502, "passerelle.envelope.UpstreamError")
    status_code, payload = await call(hub_client, "GET", "/relay/demo/fetch?path=/fail")
    assert status_code == 503
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.BreakerOpen"
    assert payload["err_desc"].startswith("the application is unavailable: its last 3 calls failed")
    assert upstream.hits["/fail"] == 3

    response = await hub_client.get("/manage/api/upstreams/", headers=AUTH)
    assert response.status == 200
    (breaker,) = [b for b in (await response.json())["data"] if b["instance"] == "relay/demo"]
    assert breaker["upstream"] == upstream.key
    assert breaker["state"] == "open"
    assert breaker["consecutive_failures"] == 3
    assert breaker["opened_at"] and breaker["next_probe"]

    response = await hub_client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert f'passerelle_breaker_state{{instance="relay/demo",upstream="{upstream.key}"}} 2.0' in text
    assert re.search(
        rf'passerelle_upstream_requests_total{{host="{re.escape(upstream.key)}",instance="relay/demo",'
        r'status="breaker_open"} [1-9]',
        text,
    )
    assert re.search(
        rf'passerelle_upstream_requests_total{{host="{re.escape(upstream.key)}",instance="relay/demo",'
        r'status="500"} 3\.0',
        text,
    )

    # After the open duration, a probe closes it, and the gauge follows.
    upstream.script("/fail", ok({"back": True}))
    await asyncio.sleep(0.55)
    assert await call(hub_client, "GET", "/relay/demo/fetch?path=/fail") == (200, {"err": 0, "data": {"back": True}})
    text = await (await hub_client.get("/metrics")).text()
    assert f'passerelle_breaker_state{{instance="relay/demo",upstream="{upstream.key}"}} 0.0' in text
