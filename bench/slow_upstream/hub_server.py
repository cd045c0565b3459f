"""The hub side of the benchmark: ``passerelle serve`` with one extra connector type whose
endpoint calls the slow application through the instance's outbound client.

The type is given to ``create_app`` directly (it is not an installed plugin); everything
else is the hub as deployed: SQLite migrated at start, the instance and an open API user
imported from a configuration document, the envelope middleware, access check, metrics,
``connector.http`` with its limits, timeouts, retries and breaker.

    python hub_server.py --port 8000 --upstream http://127.0.0.1:8100/item --data-dir /tmp/x
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel

from passerelle import Connector, endpoint
from passerelle.app import create_app
from passerelle.cli import freeze_startup_objects, use_uvloop
from passerelle.http import HttpOptions
from passerelle.logs import configure_logging
from passerelle.management import Manager
from passerelle.plugins import discover_types
from passerelle.secrets import SecretBox
from passerelle.settings import Settings
from passerelle.storage import make_engine, make_sessionmaker
from passerelle.storage.migrate import upgrade


class ProxyConfig(BaseModel):
    url: str
    max_connections: int = 512


class SlowProxy(Connector):
    slug = "bench-proxy"
    title = "Benchmark proxy"
    Config = ProxyConfig

    def http_options(self) -> HttpOptions:
        # 256 callers wait on a 200 ms application: the pool must hold them all.
        return HttpOptions(
            max_connections=self.config.max_connections, max_connections_per_host=self.config.max_connections
        )

    @endpoint(description="The application's answer, through the outbound client")
    async def fetch(self) -> object:
        return (await self.http.get(self.config.url)).json()


async def prepare(settings: Settings, types: dict[str, type[Connector]], upstream: str) -> None:
    engine = make_engine(settings.resolved_database_url)
    await upgrade(engine)
    manager = Manager(make_sessionmaker(engine), types, SecretBox.from_settings(settings))
    document = {
        "apiusers": [{"username": "open", "keytype": ""}],
        "instances": [
            {
                "type": "bench-proxy",
                "slug": "proxy",
                "title": "Slow application",
                "config": {"url": upstream},
                "access": [{"apiuser": "open", "perm": "can_access"}],
            }
        ],
    }
    await manager.import_document(document)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=args.data_dir, log_level="WARNING", run_periodic_jobs=False)
    configure_logging(settings.log_level, settings.log_format)
    types = {**discover_types(), SlowProxy.slug: SlowProxy}
    asyncio.run(prepare(settings, types, args.upstream))
    use_uvloop()  # as `passerelle serve` does
    app = create_app(settings, types=types)
    app.on_startup.append(freeze_startup_objects)  # as `passerelle serve` does
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
