"""`python -m simulators.arcgis [--data DIR|MANIFEST] --port N`: serve the ArcGIS REST simulator."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from .app import make_app
from .model import DATA_DIR, load_services


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.arcgis", description=__doc__)
    parser.add_argument("--data", default=str(DATA_DIR), help="arcgis-services.json, or the directory holding it")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=None, help="require this token on every service")
    parser.add_argument("--max-record-count", type=int, default=1000, help="for layers that set none")
    args = parser.parse_args(argv)
    services = load_services(args.data)
    app = make_app(services, token=args.token, max_record_count=args.max_record_count)
    url = f"http://{args.host}:{args.port}/arcgis/rest/services?f=json"
    print(f"ArcGIS REST simulator: {len(services)} services on {url}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
