"""The hub side of the cache benchmark: the hub as deployed (``create_app``, SQLite migrated
at start, an open API user, the envelope middleware, access check, metrics, the outbound
client) with one extra connector type whose two endpoints ask the same application, one
declaring a cache duration and one not.

    python hub_server.py --port 8000 --upstream http://127.0.0.1:8100 --data-dir /tmp/x

Settings come from the environment (``PASSERELLE_CACHE_URL`` for Redis, …).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel

from passerelle import Connector, Param, endpoint
from passerelle.app import create_app
from passerelle.http import HttpOptions
from passerelle.logs import configure_logging
from passerelle.management import Manager
from passerelle.plugins import discover_types
from passerelle.secrets import SecretBox
from passerelle.settings import Settings
from passerelle.storage import make_engine, make_sessionmaker
from passerelle.storage.migrate import upgrade

TYPE = "bench-cache"
SLUG = "app"


class ApplicationConfig(BaseModel):
    url: str


class CachedApplication(Connector):
    slug = TYPE
    title = "Benchmark application"
    description = "Asks the benchmark's application."
    Config = ApplicationConfig

    def http_options(self) -> HttpOptions:
        # 1,000 uncached calls at once must not wait for a pooled connection.
        return HttpOptions(max_connections=2048, max_connections_per_host=2048)

    async def ask(self, q: str, delay: float) -> object:
        return (await self.http.get(f"{self.config.url}/answer", params={"q": q, "delay": str(delay)})).json()

    @endpoint(description="The application's answer, cached five minutes.", cache_duration=300)
    async def cached(
        self,
        q: Annotated[str, Param("Question", example="x")] = "",
        delay: Annotated[float, Param("Seconds the application takes", example=0.02)] = 0.02,
    ) -> object:
        return await self.ask(q, delay)

    @endpoint(description="The application's answer, asked every time.")
    async def uncached(
        self,
        q: Annotated[str, Param("Question", example="x")] = "",
        delay: Annotated[float, Param("Seconds the application takes", example=0.02)] = 0.02,
    ) -> object:
        return await self.ask(q, delay)


async def prepare(settings: Settings, types: dict[str, type[Connector]], upstream: str) -> None:
    engine = make_engine(settings.resolved_database_url)
    await upgrade(engine)
    manager = Manager(make_sessionmaker(engine), types, SecretBox.from_settings(settings))
    document = {
        "apiusers": [{"username": "open", "keytype": ""}],
        "instances": [
            {
                "type": TYPE,
                "slug": SLUG,
                "title": "Benchmark application",
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
    settings = Settings(data_dir=args.data_dir)
    configure_logging(settings.log_level, settings.log_format)
    types = {**discover_types(), TYPE: CachedApplication}
    asyncio.run(prepare(settings, types, args.upstream))
    app = create_app(settings, types=types)
    # backlog: 1,000 clients connect at once in the single-flight measure.
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
