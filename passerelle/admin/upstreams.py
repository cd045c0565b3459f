"""Admin API: the circuit breakers of the instances' outbound clients.

- ``GET /manage/api/upstreams/``: every breaker of every live instance of this
  process (instance, upstream, state, consecutive failures, opened at, next probe);
- ``POST /manage/api/upstreams/<type>/<slug>/reset/``: close that instance's breakers
  (``?upstream=https://host:443`` for one of them) when the application is known to
  be back, without waiting for the next probe.

Breakers live in each hub process: behind a load balancer, each process answers
for its own (docs/outbound-calls.md).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from passerelle.connectors import Connector
from passerelle.envelope import NotFound, json_response
from passerelle.hub import hub_of


def breakers_of(connector: Connector) -> list[dict[str, Any]]:
    client = connector._http
    if client is None:  # no call made yet: no breaker
        return []
    return [{"type": connector.instance.type, "slug": connector.instance.slug, **b} for b in client.breaker_states()]


async def list_upstreams(request: web.Request) -> web.Response:
    found: list[dict[str, Any]] = []
    for connector in hub_of(request).registry.all():
        found.extend(breakers_of(connector))
    return json_response({"err": 0, "data": found})


async def reset_upstreams(request: web.Request) -> web.Response:
    connector = hub_of(request).registry.lookup(request.match_info["type"], request.match_info["slug"])
    upstream = request.query.get("upstream") or None
    client = connector._http
    if upstream is not None and (client is None or upstream not in client.breakers):
        raise NotFound(f"this instance has no breaker for the upstream '{upstream}'")
    if client is not None:
        client.reset_breakers(upstream)
    return json_response({"err": 0, "data": breakers_of(connector)})


ROUTES = [
    ("GET", "/upstreams/", list_upstreams),
    ("POST", "/upstreams/{type}/{slug}/reset/", reset_upstreams),
]
