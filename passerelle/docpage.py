"""The instance page ``GET /<type>/<slug>/``: its endpoints, as HTML or JSON."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from passerelle.description import instance_description
from passerelle.envelope import json_response
from passerelle.hub import hub_of
from passerelle.views import render_html, wants_html


async def handler(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    connector = hub.registry.lookup(request.match_info["type"], request.match_info["slug"])
    base = hub.base_url(request)
    info = connector.instance
    url = f"{base}/{info.type}/{info.slug}/"
    description = instance_description(connector, url)
    if wants_html(request):
        openapi_url = f"{base}/openapi.json?{urlencode({'instance': f'{info.type}/{info.slug}'})}"
        return render_html(
            "instance.html", instance=description, home_url=f"{base}/", openapi_url=openapi_url, pretty=pretty_json
        )
    return json_response({"err": 0, "data": description})


def pretty_json(value: object) -> str:
    """JSON for people: indented, keys in declaration order (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(request.path + "/")
