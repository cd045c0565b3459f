"""Admin API: ``DELETE /manage/api/cache/`` empties the response cache.

With Redis (``cache_url``) every process's entries go; in memory, only those of
the process that answers (each process has its own cache).
"""

from __future__ import annotations

from aiohttp import web

from passerelle.envelope import json_response
from passerelle.hub import hub_of


async def flush_cache(request: web.Request) -> web.Response:
    removed = await hub_of(request).cache.clear()
    return json_response({"err": 0, "data": {"removed": removed}})


ROUTES = [("DELETE", "/cache/", flush_cache)]
