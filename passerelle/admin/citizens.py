"""Admin API: a citizen's rights of access and erasure, by NameID.

- ``GET /manage/api/citizens/<NameID>/``: everything the hub holds about this
  NameID across every instance (links, audit trail, and any store registered in
  :class:`passerelle.citizens.Citizens`);
- ``DELETE /manage/api/citizens/<NameID>/``: erase it all, and answer what each
  store removed. The erasure is audited without the NameID.
"""

from __future__ import annotations

from aiohttp import web

from passerelle.envelope import InternalError, json_response
from passerelle.hub import hub_of

ADMIN_ACTOR = "admin"


async def show_citizen(request: web.Request) -> web.Response:
    found = await hub_of(request).citizens.show(request.match_info["name_id"])
    return json_response({"err": 0, "data": found})


async def erase_citizen(request: web.Request) -> web.Response:
    erasure = await hub_of(request).citizens.erase(request.match_info["name_id"], actor=ADMIN_ACTOR)
    if not erasure.complete:
        raise InternalError(
            f"erasure incomplete: {', '.join(erasure.failed)} failed (see the logs); erase again",
            data=erasure.as_dict(),
        )
    return json_response({"err": 0, "data": erasure.as_dict()})
