"""The instance page ``GET /<type>/<slug>/``: its availability and endpoints, as HTML or JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from passerelle.availability import instance_availability
from passerelle.connectors import Connector
from passerelle.description import availability_description, instance_description
from passerelle.envelope import json_response
from passerelle.hub import Hub, hub_of
from passerelle.views import render_html, wants_html

logger = structlog.get_logger("passerelle.docpage")
EVENTS_SHOWN = 10


async def handler(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    connector = hub.registry.lookup(request.match_info["type"], request.match_info["slug"])
    base = hub.base_url(request)
    info = connector.instance
    url = f"{base}/{info.type}/{info.slug}/"
    description = instance_description(connector, url, await availability_of(hub, connector))
    if wants_html(request):
        openapi_url = f"{base}/openapi.json?{urlencode({'instance': f'{info.type}/{info.slug}'})}"
        return render_html(
            "instance.html", instance=description, home_url=f"{base}/", openapi_url=openapi_url, pretty=pretty_json
        )
    return json_response({"err": 0, "data": description})


async def availability_of(hub: Hub, connector: Connector) -> dict[str, Any]:
    try:
        async with asyncio.timeout(5):
            state, events, _ = await instance_availability(hub.sessionmaker, connector.instance.id, limit=EVENTS_SHOWN)
    except Exception:
        # The page documents the instance: it is served even when the database is away.
        logger.warning("availability unreadable for the instance page", exc_info=True)
        state, events = None, []
    return availability_description(state, events)


def pretty_json(value: object) -> str:
    """JSON for people: indented, keys in declaration order (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(request.path + "/")
