"""Admin JSON API under ``/manage/api/``: connector types, instances, API users,
uploads, export and import. Secrets are write-only: they can be set, never read.

Every answer uses the envelope. Every change is validated, written in one
transaction, and applied at once in this process (other processes follow within
``config_refresh_interval``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from passerelle.admin import cache, jobs, monitoring, upstreams
from passerelle.admin.auth import ADMIN_LIMITER, FailureLimiter, require_admin
from passerelle.admin.citizens import erase_citizen, show_citizen
from passerelle.configfile import (
    ApiUserEntry,
    ConfigFileError,
    InstanceEntry,
    parse_document,
)
from passerelle.connectors import Connector, secret_fields
from passerelle.description import type_description
from passerelle.envelope import InvalidBody, NotFound, RequestError, WrongParameter, json_response
from passerelle.hub import Hub, hub_of
from passerelle.management import Manager, as_utc, public_config
from passerelle.storage.models import ApiUser, ConnectorInstance, utcnow

PREFIX = "/manage/api"
SAFE_FILE_NAME = re.compile(r"^[\w][\w.-]{0,199}$")
ROTATION_GRACE = 86400  # seconds the replaced key stays accepted by default
MAX_ROTATION_GRACE = 90 * 86400


def ok(data: Any, status: int = 200, **extra: Any) -> web.Response:
    return json_response({"err": 0, "data": data, **extra}, status=status)


def manager(request: web.Request) -> Manager:
    hub = hub_of(request)
    return Manager(hub.sessionmaker, hub.types, hub.registry.secrets)


def connector_type(hub: Hub, type_slug: str) -> type[Connector]:
    cls = hub.types.get(type_slug)
    if cls is None:
        raise NotFound(f"unknown connector type '{type_slug}'")
    return cls


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidBody("a JSON body is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}") from None


def instance_view(hub: Hub, row: ConnectorInstance, manager: Manager) -> dict[str, Any]:
    """The instance as an export without secrets, plus what only the admin API shows."""
    cls = hub.types.get(row.type)
    secrets_set = public_config(cls, row.config)[1] if cls is not None else []
    key = (row.type, row.slug)
    if key in hub.registry.connectors:
        status = {"state": "ready"}
        try:
            details = hub.registry.connectors[key].status_details()
        except Exception as exc:  # a connector's report must not break the admin listing
            details = {"error": f"status_details() failed: {exc!r}"}
        if details:
            status["details"] = details
    elif key in hub.registry.broken:
        status = {"state": "broken", "reason": hub.registry.broken[key]}
    else:
        status = {"state": "loading"}
    return {
        **manager.export_instance(row, "omit"),
        "secrets_set": secrets_set,
        "status": status,
        "created": row.created,
        "updated": row.updated,
        "url": f"/{row.type}/{row.slug}/",
    }


def apiuser_view(user: ApiUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "fullname": user.fullname,
        "description": user.description,
        "keytype": user.keytype,
        "key_set": bool(user.key),
        **rotation_view(user),
        "ipsource": user.ipsource,
    }


def rotation_view(user: ApiUser) -> dict[str, Any]:
    """Whether a previous key is still accepted, and until when (never the key)."""
    expires = as_utc(user.previous_key_expires)
    active = bool(user.previous_key) and expires is not None and expires > utcnow()
    return {"previous_key_set": active, "previous_key_expires": expires if active else None}


async def apply(request: web.Request, document: dict[str, Any]) -> dict[str, list[str]]:
    try:
        report = await manager(request).import_document(document)
    except ConfigFileError as exc:
        raise InvalidBody(str(exc)) from None
    await hub_of(request).registry.reload()
    return report


# -- views -------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    return ok(
        {
            "types": f"{PREFIX}/types/",
            "instances": f"{PREFIX}/instances/",
            "apiusers": f"{PREFIX}/apiusers/",
            "export": f"{PREFIX}/export/",
            "import": f"{PREFIX}/import/",
            "citizens": f"{PREFIX}/citizens/{{NameID}}/",
            "jobs": f"{PREFIX}/jobs/",
            "periodic": f"{PREFIX}/periodic/",
            "upstreams": f"{PREFIX}/upstreams/",
            "cache": f"{PREFIX}/cache/",
            "logs": f"{PREFIX}/instances/{{type}}/{{slug}}/logs/",
            "availability": f"{PREFIX}/instances/{{type}}/{{slug}}/availability/",
        }
    )


async def list_types(request: web.Request) -> web.Response:
    hub = hub_of(request)
    return ok([type_description(cls) for _, cls in sorted(hub.types.items())])


async def get_type(request: web.Request) -> web.Response:
    return ok(type_description(connector_type(hub_of(request), request.match_info["type"])))


async def list_instances(request: web.Request) -> web.Response:
    hub = hub_of(request)
    managing = manager(request)
    return ok([instance_view(hub, row, managing) for row in await managing.list_instances()])


async def get_instance(request: web.Request) -> web.Response:
    hub = hub_of(request)
    type_slug, slug = request.match_info["type"], request.match_info["slug"]
    managing = manager(request)
    row = await managing.get_instance(type_slug, slug)
    if row is None:
        raise NotFound(f"no {type_slug} instance named '{slug}'")
    return ok(instance_view(hub, row, managing))


def parse_instance(payload: Any, **forced: str) -> InstanceEntry:
    if not isinstance(payload, dict):
        raise InvalidBody("the body must be a JSON object describing the instance")
    for key, value in forced.items():
        if key in payload and payload[key] != value:
            raise InvalidBody(f"'{key}' in the body ({payload[key]!r}) differs from the URL ({value!r})")
        payload[key] = value
    try:
        return InstanceEntry.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)
        problems = "; ".join(f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in first)
        raise InvalidBody(f"invalid instance: {problems}") from None


async def create_instance(request: web.Request) -> web.Response:
    entry = parse_instance(await read_json(request))
    connector_type(hub_of(request), entry.type)
    if await manager(request).get_instance(entry.type, entry.slug) is not None:
        raise RequestError(f"a {entry.type} instance named '{entry.slug}' already exists", http_status=409)
    await apply(request, {"instances": [entry.model_dump(exclude_unset=True)]})
    return await _instance_answer(request, entry.type, entry.slug, status=201)


async def put_instance(request: web.Request) -> web.Response:
    """Create or replace; secrets left out keep their stored value."""
    type_slug, slug = request.match_info["type"], request.match_info["slug"]
    connector_type(hub_of(request), type_slug)
    entry = parse_instance(await read_json(request), type=type_slug, slug=slug)
    existed = await manager(request).get_instance(type_slug, slug) is not None
    await apply(request, {"instances": [entry.model_dump(exclude_unset=True)]})
    return await _instance_answer(request, type_slug, slug, status=200 if existed else 201)


async def patch_instance(request: web.Request) -> web.Response:
    """Change some fields; ``config`` is merged key by key (null clears a key)."""
    type_slug, slug = request.match_info["type"], request.match_info["slug"]
    row = await manager(request).get_instance(type_slug, slug)
    if row is None:
        raise NotFound(f"no {type_slug} instance named '{slug}'")
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise InvalidBody("the body must be a JSON object with the fields to change")
    merged: dict[str, Any] = {"type": type_slug, "slug": slug, "title": row.title, "description": row.description}
    config = dict(row.config)
    cls = hub_of(request).types.get(type_slug)
    secrets = set(secret_fields(cls.Config)) if cls is not None else set()
    for key, value in (changes.pop("config", None) or {}).items():
        if value is None and key not in secrets:
            config.pop(key, None)  # back to the field's default
        else:
            # A secret left out keeps its stored value, so clearing one must be explicit.
            config[key] = value
    merged["config"] = config
    for key in ("type", "slug"):
        if key in changes and changes.pop(key) != merged[key]:
            raise InvalidBody(f"'{key}' cannot be changed; create a new instance instead")
    merged.update(changes)
    entry = parse_instance(merged)
    await apply(request, {"instances": [entry.model_dump(exclude_unset=True)]})
    return await _instance_answer(request, type_slug, slug)


async def _instance_answer(request: web.Request, type_slug: str, slug: str, status: int = 200) -> web.Response:
    managing = manager(request)
    row = await managing.get_instance(type_slug, slug)
    assert row is not None
    return ok(instance_view(hub_of(request), row, managing), status=status)


async def delete_instance(request: web.Request) -> web.Response:
    type_slug, slug = request.match_info["type"], request.match_info["slug"]
    if not await manager(request).delete_instance(type_slug, slug):
        raise NotFound(f"no {type_slug} instance named '{slug}'")
    await hub_of(request).registry.reload()
    return ok(None)


async def upload_file(request: web.Request) -> web.Response:
    """Store a file for an instance (e.g. a CSV for csvdatasource) in its files directory."""
    hub = hub_of(request)
    connector = hub.registry.lookup(request.match_info["type"], request.match_info["slug"])
    name = request.match_info["name"]
    if not SAFE_FILE_NAME.match(name) or ".." in name:
        raise WrongParameter("file names are letters, digits, '.', '-' and '_' (no path)")
    directory: Path = connector.files_dir
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{name}.upload"
    size = 0
    with temporary.open("wb") as handle:
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            handle.write(chunk)
    # Atomic replace: a reader never sees half a file.
    temporary.replace(directory / name)
    return ok({"name": name, "size": size})


async def list_apiusers(request: web.Request) -> web.Response:
    return ok([apiuser_view(u) for u in await manager(request).list_apiusers()])


async def put_apiuser(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidBody("the body must be a JSON object describing the API user")
    username = request.match_info["username"]
    if payload.setdefault("username", username) != username:
        raise InvalidBody("'username' in the body differs from the URL")
    try:
        entry = ApiUserEntry.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise InvalidBody(f"invalid API user: {problems}") from None
    report = await apply(request, {"apiusers": [entry.model_dump(exclude_unset=True)]})
    users = {u.username: u for u in await manager(request).list_apiusers()}
    return ok(apiuser_view(users[username]), status=201 if report["created"] else 200)


async def rotate_apiuser_key(request: web.Request) -> web.Response:
    """``{"key": "<new key>", "grace": <seconds>}``: the new key is accepted at once, the
    current one for ``grace`` more seconds (default one day; 0 ends it now)."""
    payload = await read_json(request)
    if not isinstance(payload, dict) or set(payload) - {"key", "grace"}:
        raise InvalidBody("the body must be a JSON object with 'key' (the new key) and 'grace' (seconds)")
    key, grace = payload.get("key"), payload.get("grace", ROTATION_GRACE)
    if not isinstance(key, str) or not key.strip():
        raise InvalidBody("'key': the new key is required (a non-empty string)")
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_ROTATION_GRACE:
        raise InvalidBody(f"'grace': seconds the current key stays accepted, from 0 to {MAX_ROTATION_GRACE}")
    username = request.match_info["username"]
    try:
        user = await manager(request).rotate_key(username, key, timedelta(seconds=grace))
    except ConfigFileError as exc:
        raise InvalidBody(str(exc)) from None
    if user is None:
        raise NotFound(f"no API user named '{username}'")
    await hub_of(request).registry.reload()
    return ok(apiuser_view(user))


async def delete_apiuser(request: web.Request) -> web.Response:
    if not await manager(request).delete_apiuser(request.match_info["username"]):
        raise NotFound(f"no API user named '{request.match_info['username']}'")
    await hub_of(request).registry.reload()
    return ok(None)


async def export(request: web.Request) -> web.Response:
    secrets = request.query.get("secrets", "env")
    if secrets not in ("env", "omit"):
        raise WrongParameter("invalid value for parameter 'secrets': expected 'env' or 'omit'")
    return ok(await manager(request).export_document(secrets=secrets))  # type: ignore[arg-type]


async def import_(request: web.Request) -> web.Response:
    """Import a JSON or YAML document (all or nothing); ``?dry_run=1`` only checks it."""
    raw = await request.text()
    json_format = request.content_type == "application/json"
    try:
        document = parse_document(raw, json_format=json_format, origin="the body")
    except ConfigFileError as exc:
        raise InvalidBody(str(exc)) from None
    if request.query.get("dry_run") in ("1", "true", "yes"):
        try:
            report = await manager(request).import_document(document, dry_run=True)
        except ConfigFileError as exc:
            raise InvalidBody(str(exc)) from None
        return ok(report, dry_run=True)
    return ok(await apply(request, document))


def setup_routes(app: web.Application) -> None:
    app[ADMIN_LIMITER] = FailureLimiter()  # slows down token guessing (passerelle.admin.auth)
    routes = [
        ("GET", "/", index),
        ("GET", "/types/", list_types),
        ("GET", "/types/{type}/", get_type),
        ("GET", "/instances/", list_instances),
        ("POST", "/instances/", create_instance),
        ("GET", "/instances/{type}/{slug}/", get_instance),
        ("PUT", "/instances/{type}/{slug}/", put_instance),
        ("PATCH", "/instances/{type}/{slug}/", patch_instance),
        ("DELETE", "/instances/{type}/{slug}/", delete_instance),
        ("PUT", "/instances/{type}/{slug}/files/{name}", upload_file),
        ("GET", "/apiusers/", list_apiusers),
        ("PUT", "/apiusers/{username}/", put_apiuser),
        ("DELETE", "/apiusers/{username}/", delete_apiuser),
        ("POST", "/apiusers/{username}/rotate/", rotate_apiuser_key),
        ("GET", "/export/", export),
        ("POST", "/import/", import_),
        ("GET", "/citizens/{name_id}/", show_citizen),
        ("DELETE", "/citizens/{name_id}/", erase_citizen),
        *cache.ROUTES,
        *monitoring.ROUTES,
        *upstreams.ROUTES,
        *jobs.ROUTES,
    ]
    for method, path, view in routes:
        handler = require_admin(view)
        app.router.add_route(method, PREFIX + path, handler)
        if path.endswith("/") and path != "/":
            app.router.add_route(method, PREFIX + path.rstrip("/"), handler)
    app.router.add_route("GET", PREFIX, require_admin(index))
