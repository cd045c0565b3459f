"""`python -m simulators.geoapi [--data DIR] --port N`: serve the geo.api.gouv.fr simulator."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from .app import make_app
from .data import DATA_DIR, load_dataset


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.geoapi", description=__doc__)
    parser.add_argument("--data", default=str(DATA_DIR), help="directory of communes.json.gz, departements.json …")
    parser.add_argument("--port", type=int, default=7879)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)
    app = make_app(data)
    print(f"geo.api simulator: {len(data.communes)} communes on http://{args.host}:{args.port}/communes", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
