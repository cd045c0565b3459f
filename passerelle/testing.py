"""Test kit for connector authors, loaded by pytest through the ``pytest11`` entry point.

Fixtures (async ones need pytest-asyncio, which ``pytest-aiohttp`` brings):

- ``hub_database_url``: the database tests run on (in-memory SQLite by default;
  override it to run on PostgreSQL);
- ``hub_settings``: settings with a temporary data directory, the admin token
  ``ADMIN_TOKEN`` and the key of stored secrets ``SECRET_KEY``;
- ``hub_connector_types``: the connector types the app knows (every installed
  type by default; override to add your own);
- ``hub_app`` / ``hub_client``: the application and an aiohttp test client;
- ``make_instance``: ``await make_instance("csvdatasource", "musees", config={...})``
  creates an instance reachable by an open API user (``access="open"``), or with no
  right at all (``access=None``);
- ``fake_upstream``: a real aiohttp server on 127.0.0.1 answering scripted replies.

And :func:`check_conformance`, which every connector type should pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from passerelle.app import create_app
from passerelle.connectors import Connector
from passerelle.description import example_url, rest_template, sorted_specs
from passerelle.envelope import HubError
from passerelle.hub import HUB
from passerelle.management import Manager
from passerelle.plugins import discover_types
from passerelle.settings import Settings
from passerelle.storage import Base, make_engine
from passerelle.storage.migrate import upgrade

try:
    import pytest_asyncio

    async_fixture = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - the kit then offers only the synchronous helpers
    pytest_asyncio = None
    async_fixture = pytest.fixture

ADMIN_TOKEN = "test-admin-token"
# Encrypts stored secrets in tests (required on PostgreSQL, see passerelle.secrets).
SECRET_KEY = "test-secret-key"
OPEN_USER = "everyone"

__all__ = [
    "ADMIN_TOKEN",
    "OPEN_USER",
    "SECRET_KEY",
    "FakeUpstream",
    "check_conformance",
    "error_classes",
    "prepare_database",
]


async def prepare_database(engine: AsyncEngine) -> None:
    """Bring the schema to head and empty every table (PostgreSQL databases are
    shared between tests; in-memory SQLite starts empty anyway)."""
    await upgrade(engine)
    if engine.dialect.name != "sqlite":
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)  # every table, new ones included
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def hub_database_url(tmp_path: Path) -> str:
    # A file, not :memory:, so that concurrent sessions (the registry's watcher and
    # an import) have their own connections, as in production.
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"


@pytest.fixture
def hub_settings(tmp_path: Path, hub_database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=hub_database_url,
        admin_tokens=[ADMIN_TOKEN],
        secret_key=SECRET_KEY,
        config_refresh_interval=0.2,
        log_format="console",
    )


@pytest.fixture
def hub_connector_types() -> dict[str, type[Connector]]:
    return discover_types()


@async_fixture
async def hub_engine(hub_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(hub_settings.resolved_database_url)
    await prepare_database(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def hub_app(
    hub_settings: Settings, hub_connector_types: dict[str, type[Connector]], hub_engine: AsyncEngine
) -> web.Application:
    return create_app(hub_settings, types=hub_connector_types, engine=hub_engine)


@async_fixture
async def hub_client(hub_app: web.Application) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(hub_app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
def make_instance(hub_app: web.Application, hub_client: TestClient[Any, Any]) -> Callable[..., Awaitable[Connector]]:
    """Create (or update) an instance and return its live connector."""

    async def make(
        type_slug: str,
        slug: str = "test",
        *,
        config: dict[str, Any] | None = None,
        title: str | None = None,
        description: str = "",
        access: str | None = "open",
    ) -> Connector:
        hub = hub_app[HUB]
        manager = Manager(hub.sessionmaker, hub.types, hub.registry.secrets)
        cls = hub.types[type_slug]
        instance: dict[str, Any] = {
            "type": type_slug,
            "slug": slug,
            "title": title or f"{cls.title} {slug}",
            "description": description,
            "config": config or {},
        }
        document: dict[str, Any] = {"instances": [instance]}
        if access == "open":
            document["apiusers"] = [{"username": OPEN_USER, "keytype": ""}]
            instance["access"] = [{"apiuser": OPEN_USER, "perm": perm} for perm in cls.permissions()]
        elif access is None:
            instance["access"] = []
        await manager.import_document(document)
        await hub.registry.reload()
        return hub.registry.lookup(type_slug, slug)

    return make


# -- a real upstream server with scripted answers -----------------------------


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FakeUpstream:
    """An aiohttp server on 127.0.0.1: ``upstream.reply("GET", "/search", json={...})``.

    Replies for one route are served in order; the last one repeats. Every
    request is recorded in ``upstream.requests``. Unscripted paths answer 404.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self._served: dict[tuple[str, str], int] = {}
        self.requests: list[RecordedRequest] = []
        self.server: TestServer | None = None

    def reply(self, method: str, path: str, **kwargs: Any) -> None:
        self.routes.setdefault((method.upper(), path), []).append(Reply(**kwargs))

    @property
    def url(self) -> str:
        assert self.server is not None, "the fake upstream is not started"
        return str(self.server.make_url("")).rstrip("/")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                {k: request.query.getall(k) for k in request.query},
                dict(request.headers),
                body,
            )
        )
        key = (request.method, request.path)
        replies = self.routes.get(key)
        if not replies:
            return web.json_response({"error": "not scripted"}, status=404)
        served = self._served.get(key, 0)
        self._served[key] = served + 1
        reply = replies[min(served, len(replies) - 1)]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.json is not None:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        payload = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
        return web.Response(
            body=payload, status=reply.status, headers=reply.headers, content_type=reply.content_type or "text/plain"
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@async_fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    yield upstream
    await upstream.close()


# -- conformance ---------------------------------------------------------------


def error_classes() -> set[str]:
    """``err_class`` values of the error tree (every HubError subclass loaded)."""
    found: set[str] = set()
    pending: list[type[HubError]] = [HubError]
    while pending:
        cls = pending.pop()
        found.add(cls.err_class())
        pending.extend(cls.__subclasses__())
    return found


def check_declarations(cls: type[Connector]) -> list[str]:
    """Static checks of a connector type; returns the problems found."""
    problems: list[str] = []
    try:
        jsonschema.Draft202012Validator.check_schema(cls.Config.model_json_schema())
    except jsonschema.SchemaError as exc:
        problems.append(f"configuration schema is not valid JSON Schema: {exc.message}")
    for name, info in cls.Config.model_fields.items():
        if not info.description:
            problems.append(f"configuration field '{name}' has no description")
    if not cls.description:
        problems.append("the type has no description")
    if not cls.endpoints:
        problems.append("the type declares no endpoint")
    for spec in sorted_specs(cls):
        label = f"endpoint '{spec.name}'" + (f" ({spec.pattern.pattern})" if spec.pattern else "")
        if not spec.description:
            problems.append(f"{label} has no description")
        for param in [*spec.path_params, *spec.query_params]:
            if not param.description:
                problems.append(f"{label}: parameter '{param.query_name}' has no description")
            if param.example is None and param.required:
                problems.append(f"{label}: required parameter '{param.query_name}' has no example value")
        if spec.pattern is not None and rest_template(spec) == "{rest}":
            problems.append(f"{label} has a pattern that is not a plain path and no example_pattern")
        if spec.body_schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(spec.body_schema)
            except jsonschema.SchemaError as exc:
                problems.append(f"{label}: body schema is not valid JSON Schema: {exc.message}")
    return problems


async def check_conformance(client: TestClient[Any, Any], connector: Connector) -> list[str]:
    """Static checks plus a call of every GET endpoint's example URL on a live
    instance: each must answer a valid envelope (or valid JSON for raw endpoints)
    and errors must belong to the hub's error tree. Returns the problems found."""
    cls = type(connector)
    problems = check_declarations(cls)
    known_errors = error_classes()
    base = f"/{connector.instance.type}/{connector.instance.slug}/"
    for spec in sorted_specs(cls):
        if "GET" not in spec.methods:
            continue
        url = example_url(spec, base)
        if url is None:
            continue
        response = await client.get(url)
        label = f"example call GET {url}"
        if response.content_type not in ("application/json",):
            problems.append(f"{label}: answered {response.content_type}, not JSON")
            continue
        payload = await response.json()
        if spec.raw and response.status == 200:
            continue
        if not isinstance(payload, dict) or "err" not in payload:
            problems.append(f"{label}: no envelope")
            continue
        if payload["err"] == 0:
            if response.status != 200:
                problems.append(f"{label}: err 0 with HTTP {response.status}")
            if "data" not in payload:
                problems.append(f"{label}: success envelope without 'data'")
        else:
            missing = {"err_class", "err_desc"} - set(payload)
            if missing:
                problems.append(f"{label}: error envelope without {sorted(missing)}")
            elif payload["err_class"] not in known_errors:
                problems.append(f"{label}: err_class {payload['err_class']!r} is not in the hub's error tree")
            if response.status >= 500:
                problems.append(f"{label}: HTTP {response.status} ({payload.get('err_desc')})")
    return problems
