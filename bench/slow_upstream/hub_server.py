"""The hub side of the benchmark: ``passerelle serve`` with one extra connector type whose
endpoint calls the slow application through the instance's outbound client.

The type is given to ``create_app`` directly (it is not an installed plugin); everything
else is the hub as deployed: SQLite migrated at start, the instance and an open API user
imported from a configuration document, the envelope middleware, access check, metrics,
``connector.http`` with its limits, timeouts, retries and breaker.

    python hub_server.py --port 8000 --upstream http://127.0.0.1:8100/item --data-dir /tmp/x
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from passerelle import Connector, endpoint
from passerelle.http import HttpOptions
from passerelle.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchhub import arguments, serve_one_instance


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


def main() -> None:
    args = arguments()
    instance = {"slug": "proxy", "title": "Slow application", "config": {"url": args.upstream}}
    settings = Settings(data_dir=args.data_dir, log_level="WARNING", run_periodic_jobs=False)
    serve_one_instance(SlowProxy, instance, settings, host=args.host, port=args.port, backlog=2048)


if __name__ == "__main__":
    main()
