"""The hub side of the address benchmark: the hub as `passerelle serve` runs it (``bench/benchhub.py``:
uvloop, SQLite migrated at start, an open API user, the middleware, access check) with one
``base-adresse`` instance whose local backend indexes the given files.

    python hub_server.py --port 8000 --data-dir /tmp/x --source a.csv.gz --source b.csv.gz

The endpoint answers 503 until the index is built and loaded: poll ``addresses?q=…`` until 200.
Settings come from the environment (``PASSERELLE_*``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from passerelle.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchhub import serve_one_instance

SLUG = "bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--source", action="append", required=True, help="an address file (absolute path)")
    args = parser.parse_args()

    from connectors.sig.baseadresse import BaseAdresse

    config = {"sources": [str(Path(source).resolve()) for source in args.source], "backends": ["local"]}
    instance = {"slug": SLUG, "title": "Adresses (benchmark)", "config": config}
    settings = Settings(data_dir=args.data_dir)
    serve_one_instance(BaseAdresse, instance, settings, host=args.host, port=args.port, backlog=2048)


if __name__ == "__main__":
    main()
