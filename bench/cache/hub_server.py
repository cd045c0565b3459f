"""The hub side of the cache benchmark: the hub as `passerelle serve` runs it
(``bench/benchhub.py``: uvloop, SQLite migrated at start, an open API user, the envelope
middleware, access check, metrics, the outbound client) with one extra connector type
whose two endpoints ask the same application, one declaring a cache duration and one not.

    python hub_server.py --port 8000 --upstream http://127.0.0.1:8100 --data-dir /tmp/x

Settings come from the environment (``PASSERELLE_CACHE_URL`` for Redis, …).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel

from passerelle import Connector, Param, endpoint
from passerelle.http import HttpOptions
from passerelle.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchhub import arguments, serve_one_instance

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


def main() -> None:
    args = arguments()
    instance = {"slug": SLUG, "title": "Benchmark application", "config": {"url": args.upstream}}
    # backlog: 1,000 clients connect at once in the single-flight measure.
    settings = Settings(data_dir=args.data_dir)
    serve_one_instance(CachedApplication, instance, settings, host=args.host, port=args.port, backlog=4096)


if __name__ == "__main__":
    main()
