"""`python -m simulators.geoplateforme --data FILE.csv[.gz] --port N`: serve the geocoder simulator."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from .app import make_app
from .data import load_csv


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.geoplateforme", description=__doc__)
    parser.add_argument("--data", action="append", required=True, help="normalised address CSV, may be gzipped")
    parser.add_argument("--port", type=int, default=7878)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second per client IP")
    parser.add_argument("--retry-after", type=int, default=5, help="seconds advertised in Retry-After on a 429")
    args = parser.parse_args(argv)
    addresses = [address for path in args.data for address in load_csv(path)]
    app = make_app(addresses, rate_limit=args.rate_limit, retry_after=args.retry_after)
    print(f"geoplateforme simulator: {len(addresses)} addresses on http://{args.host}:{args.port}/search", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
