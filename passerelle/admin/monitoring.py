"""Admin API: an instance's resource logs and availability.

- ``GET /manage/api/instances/<type>/<slug>/logs/``: the resource logs, newest
  first, filtered by ``level`` (minimum: DEBUG, INFO, WARNING, ERROR, CRITICAL),
  ``since`` and ``until`` (ISO 8601; ``until`` excluded), ``q`` (a part of the
  message, any case), ``request_id``, ``name_id``; paged by ``limit`` (default 100,
  at most 1000) and ``offset``. The answer has ``count``, the number of matching rows;
- ``GET /manage/api/instances/<type>/<slug>/availability/``: the current state and
  the history of changes, newest first, paged by ``limit`` (default 20) and ``offset``;
- ``POST /manage/api/instances/<type>/<slug>/availability/check/``: run the check
  now (notifying a change as the periodic check would) and answer the new state.

Both readers work for instances whose configuration is broken too: their rows stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from passerelle import resourcelogs
from passerelle.availability import AvailabilityService, instance_availability
from passerelle.envelope import NotFound, WrongParameter, json_response
from passerelle.hub import Hub, hub_of
from passerelle.requestid import request_id_of
from passerelle.settings import LOG_LEVELS
from passerelle.storage.models import ConnectorInstance

MAX_LIMIT = 1000
LOG_PARAMETERS = ("level", "since", "until", "q", "request_id", "name_id", "limit", "offset")
AVAILABILITY_PARAMETERS = ("limit", "offset")


def ok(data: Any, **extra: Any) -> web.Response:
    # passerelle.admin.api's ok(), which cannot be imported here: api imports this module.
    return json_response({"err": 0, "data": data, **extra})


async def instance_id(hub: Hub, type_slug: str, slug: str) -> int:
    async with hub.sessionmaker() as session:
        found = await session.scalar(
            select(ConnectorInstance.id).where(ConnectorInstance.type == type_slug, ConnectorInstance.slug == slug)
        )
    if found is None:
        raise NotFound(f"no {type_slug} instance named '{slug}'")
    return found


def refuse_unknown(query: Mapping[str, str], accepted: tuple[str, ...]) -> None:
    # A misspelt filter would otherwise answer everything, which looks like a match.
    for name in query:
        if name not in accepted:
            raise WrongParameter(f"unknown parameter '{name}' (accepted: {', '.join(accepted)})")


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise WrongParameter(f"invalid value for parameter '{name}': expected an integer {bounds}")
    return value


def moment(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise WrongParameter(
            f"invalid value for parameter '{name}': expected an ISO 8601 date or time, e.g. 2026-11-29T10:00:00Z"
        ) from None
    # Rows are stored in UTC; a time without an offset is taken as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def log_query(query: Mapping[str, str]) -> resourcelogs.LogQuery:
    refuse_unknown(query, LOG_PARAMETERS)
    level = query.get("level")
    min_level = None
    if level:
        try:
            min_level = resourcelogs.level_number(level)
        except ValueError:
            raise WrongParameter(
                f"invalid value for parameter 'level': expected one of {', '.join(LOG_LEVELS)}"
            ) from None
    since, until = moment(query, "since"), moment(query, "until")
    if since is not None and until is not None and since >= until:
        raise WrongParameter("'since' must be before 'until'")
    return resourcelogs.LogQuery(
        min_level=min_level,
        since=since,
        until=until,
        text=query.get("q") or None,
        request_id=query.get("request_id") or None,
        name_id=query.get("name_id") or None,
        limit=integer(query, "limit", 100, 1, MAX_LIMIT),
        offset=integer(query, "offset", 0, 0),
    )


async def instance_logs(request: web.Request) -> web.Response:
    hub = hub_of(request)
    found = await instance_id(hub, request.match_info["type"], request.match_info["slug"])
    query = log_query(request.query)
    rows, total = await resourcelogs.search(hub.sessionmaker, found, query)
    return ok(rows, count=total, limit=query.limit, offset=query.offset)


def availability_view(state: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"current": state.as_dict() if state is not None else None, "history": history}


async def instance_availability_view(request: web.Request) -> web.Response:
    hub = hub_of(request)
    found = await instance_id(hub, request.match_info["type"], request.match_info["slug"])
    refuse_unknown(request.query, AVAILABILITY_PARAMETERS)
    limit = integer(request.query, "limit", 20, 1, MAX_LIMIT)
    offset = integer(request.query, "offset", 0, 0)
    state, history, total = await instance_availability(hub.sessionmaker, found, limit=limit, offset=offset)
    return ok(availability_view(state, history), count=total, limit=limit, offset=offset)


async def check_now(request: web.Request) -> web.Response:
    hub = hub_of(request)
    connector = hub.registry.lookup(request.match_info["type"], request.match_info["slug"])
    running = next((s for s in hub.services if isinstance(s, AvailabilityService)), None)
    service = running or AvailabilityService(hub)
    try:
        await service.check(connector)
    finally:
        if running is None:
            await service.close()
        # Lines the check logged waited for the end of this request (passerelle.resourcelogs).
        hub.registry.resource_logs.end_request(request_id_of(request), None)
    state, history, total = await instance_availability(hub.sessionmaker, connector.instance.id)
    return ok(availability_view(state, history), count=total, limit=len(history), offset=0)


ROUTES = [
    ("GET", "/instances/{type}/{slug}/logs/", instance_logs),
    ("GET", "/instances/{type}/{slug}/availability/", instance_availability_view),
    ("POST", "/instances/{type}/{slug}/availability/check/", check_now),
]
