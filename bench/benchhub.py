"""The hub side of a benchmark: the hub as `passerelle serve` runs it (uvloop, start-up
objects frozen out of the garbage collector, SQLite migrated at start), with one extra
connector type given to ``create_app`` (it is not an installed plugin) and one instance of
it open to an API user without a key.

Benchmark servers (``bench/<name>/hub_server.py``) define their connector type and call
:func:`serve_one_instance`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from passerelle.app import create_app
from passerelle.cli import freeze_startup_objects, use_uvloop
from passerelle.connectors import Connector
from passerelle.logs import configure_logging
from passerelle.management import Manager
from passerelle.plugins import discover_types
from passerelle.secrets import SecretBox
from passerelle.settings import Settings
from passerelle.storage import make_engine, make_sessionmaker
from passerelle.storage.migrate import upgrade


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the application the instance calls")
    parser.add_argument("--data-dir", required=True)
    return parser.parse_args()


async def import_instance(settings: Settings, types: dict[str, type[Connector]], instance: dict[str, Any]) -> None:
    engine = make_engine(settings.resolved_database_url)
    await upgrade(engine)
    manager = Manager(make_sessionmaker(engine), types, SecretBox.from_settings(settings))
    document = {
        "apiusers": [{"username": "open", "keytype": ""}],
        "instances": [{**instance, "access": [{"apiuser": "open", "perm": "can_access"}]}],
    }
    await manager.import_document(document)
    await engine.dispose()


def serve_one_instance(
    connector: type[Connector], instance: dict[str, Any], settings: Settings, *, host: str, port: int, backlog: int
) -> None:
    """Import ``instance`` (type, slug, title, config) of ``connector`` and serve the hub."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_level, settings.log_format)
    types = {**discover_types(), connector.slug: connector}
    asyncio.run(import_instance(settings, types, {"type": connector.slug, **instance}))
    use_uvloop()
    app = create_app(settings, types=types)
    app.on_startup.append(freeze_startup_objects)
    web.run_app(app, host=host, port=port, access_log=None, print=None, backlog=backlog)
