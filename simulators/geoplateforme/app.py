"""The aiohttp application: /search, /reverse, their CSV batch forms, rate limits and the /_simulator controls."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators.controls import add_controls

from . import batch
from .data import Address, Place, build_places
from .params import Query, parse
from .search import Index

MODES = ("normal", "429", "500", "slow")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class State:
    index: Index
    attribution: str
    licence: str
    rate_limit: float | None
    retry_after: int
    clock: Callable[[], float]
    mode: str = "normal"
    delay: float = 0.0
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def take_token(self, client: str) -> bool:
        """Token bucket per client: bursts up to one second's worth, refilled continuously."""
        assert self.rate_limit is not None
        now = self.clock()
        bucket = self.buckets.setdefault(client, _Bucket(self.rate_limit, now))
        bucket.tokens = min(self.rate_limit, bucket.tokens + (now - bucket.updated) * self.rate_limit)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


STATE = web.AppKey("geoplateforme_state", State)


def _too_many(state: State) -> web.Response:
    return web.json_response(
        {"code": 429, "message": "Too Many Requests"},
        status=429,
        headers={"Retry-After": str(state.retry_after)},
    )


@web.middleware
async def _upstream_behaviour(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_simulator/"):
        return await handler(request)
    state = request.app[STATE]
    state.calls[request.path.strip("/") or "/"] += 1
    if state.mode == "slow":
        await asyncio.sleep(state.delay)
    if state.mode == "429" or (state.rate_limit is not None and not state.take_token(request.remote or "")):
        response: web.StreamResponse = _too_many(state)
    elif state.mode == "500":
        response = web.json_response({"code": 500, "message": "An unexpected error has occurred"}, status=500)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
    state.statuses[str(response.status)] += 1
    return response


def _bad_request(errors: list[str]) -> web.Response:
    return web.json_response({"code": 400, "message": "Failed parsing query", "detail": errors}, status=400)


def _feature(place: Place, score: float, distance: int | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"score": score, **place.properties}
    if distance is not None:
        props["distance"] = distance
    props["_type"] = "address"
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [place.lon, place.lat]},
        "properties": props,
    }


def _collection(state: State, query: Query, features: list[dict[str, Any]], *, reverse: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    body["attribution"] = state.attribution
    body["licence"] = state.licence
    if not reverse:
        body["query"] = query.q
    if query.filters_echo():
        body["filters"] = query.filters_echo()
    if query.center:
        body["center"] = list(query.center)
    body["limit"] = query.limit
    return body


async def search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    query, errors = parse(request.query, reverse=False)
    if query is None:
        return _bad_request(errors)
    features: list[dict[str, Any]] = []
    if "address" in query.indexes:
        found = state.index.search(
            query.q, limit=query.limit, autocomplete=query.autocomplete, filters=query.filters, center=query.center
        )
        features = [_feature(place, score) for place, score in found]
    return web.json_response(_collection(state, query, features, reverse=False))


async def reverse(request: web.Request) -> web.Response:
    state = request.app[STATE]
    query, errors = parse(request.query, reverse=True)
    if query is None:
        return _bad_request(errors)
    assert query.center is not None
    features: list[dict[str, Any]] = []
    if "address" in query.indexes:
        found = state.index.reverse(*query.center, limit=query.limit, filters=query.filters)
        features = [_feature(place, score, distance) for place, score, distance in found]
    return web.json_response(_collection(state, query, features, reverse=True))


async def search_csv(request: web.Request) -> web.Response:
    return await batch.search_csv(request.app[STATE].index, request)


async def reverse_csv(request: web.Request) -> web.Response:
    return await batch.reverse_csv(request.app[STATE].index, request)


def make_app(
    addresses: Sequence[Address],
    *,
    attribution: str = "BAN",
    licence: str = "ETALAB-2.0",
    rate_limit: float | None = None,
    retry_after: int = 5,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """`rate_limit` is in requests per second per client IP; `clock` is there so tests need no real waiting."""
    if rate_limit is not None and rate_limit <= 0:
        raise ValueError("rate_limit must be positive")
    # aiohttp refuses bodies over 1 MB by default; the hosted CSV endpoint takes files of up to 50 MB.
    app = web.Application(middlewares=[_upstream_behaviour], client_max_size=50 * 1024 * 1024)
    app[STATE] = State(Index(build_places(addresses)), attribution, licence, rate_limit, retry_after, clock)
    for path in ("/search", "/search/"):
        app.router.add_get(path, search)
    for path in ("/reverse", "/reverse/"):
        app.router.add_get(path, reverse)
    for path in ("/search/csv", "/search/csv/"):
        app.router.add_post(path, search_csv)
    for path in ("/reverse/csv", "/reverse/csv/"):
        app.router.add_post(path, reverse_csv)
    add_controls(app, STATE, MODES)
    return app
