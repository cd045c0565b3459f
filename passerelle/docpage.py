"""The instance page ``GET /<type>/<slug>/``: its endpoints, as HTML or JSON."""

from __future__ import annotations

from aiohttp import web

from passerelle.description import instance_description
from passerelle.envelope import json_response
from passerelle.hub import hub_of
from passerelle.views import render_html, wants_html


async def handler(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    connector = hub.registry.lookup(request.match_info["type"], request.match_info["slug"])
    url = f"{hub.base_url(request)}/{connector.instance.type}/{connector.instance.slug}/"
    description = instance_description(connector, url)
    if wants_html(request):
        return render_html("instance.html", instance=description)
    return json_response({"err": 0, "data": description})


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(request.path + "/")
