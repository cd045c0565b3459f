"""Small pages of the hub: the list of instances and the health check."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web
from sqlalchemy import text

from passerelle.availability import current_states, summary
from passerelle.envelope import json_response
from passerelle.hub import Hub, hub_of
from passerelle.views import render_html, wants_html

logger = structlog.get_logger("passerelle.pages")


def instance_summaries(hub: Hub, base: str) -> list[dict[str, object]]:
    summaries = []
    for connector in hub.registry.all():
        info = connector.instance
        cls = type(connector)
        summaries.append(
            {
                "type": info.type,
                "slug": info.slug,
                "title": info.title,
                "description": info.description,
                "category": cls.category,
                "type_title": cls.title,
                "url": f"{base}/{info.type}/{info.slug}/",
            }
        )
    return summaries


async def index(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    base = hub.base_url(request)
    instances = instance_summaries(hub, base)
    if wants_html(request):
        broken = sorted(hub.registry.broken.items())
        return render_html("index.html", instances=instances, broken=broken, home_url=f"{base}/")
    return json_response({"err": 0, "data": instances})


async def health(request: web.Request) -> web.StreamResponse:
    """Liveness plus database reachability: 200 when both are fine, 503 otherwise. The
    availability of the instances is reported, and never changes the status: it is
    about the business applications, not the hub."""
    hub = hub_of(request)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(5):
            async with hub.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        database = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        healthy = True
    except Exception as exc:
        database = {"status": "error", "error": type(exc).__name__}
        healthy = False
    body = {
        "status": "ok" if healthy else "error",
        "database": database,
        "instances": len(hub.registry.connectors),
        "broken_instances": len(hub.registry.broken),
        "config_version": hub.registry.version,
        "availability": await availability_summary(hub) if healthy else None,
    }
    return json_response(body, status=200 if healthy else 503)


async def availability_summary(hub: Hub) -> dict[str, object] | None:
    """Instances up, down and not checked yet, and which are down (their messages are
    on their pages); None when it cannot be read."""
    try:
        async with asyncio.timeout(5):
            states = await current_states(hub.sessionmaker)
    except Exception as exc:
        logger.warning("availability unreadable for /health", error=type(exc).__name__)
        return None
    return summary(hub.registry.all(), states)
