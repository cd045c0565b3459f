"""The hub side of the GIS benchmark: the hub as `passerelle serve` runs it (``bench/benchhub.py``:
uvloop, SQLite migrated at start, an open API user, the middleware, access check) with one
``opengis`` instance whose named queries ``communes`` and ``secteurs`` are the layers of
demo/data/gis/, read from the files (``--protocol geojson``) or from a WFS server (``--protocol wfs``).

    python hub_server.py --port 8000 --data-dir /tmp/x --protocol wfs \
        --service-url 'http://127.0.0.1:5080/cgi-bin/mapserv?map=HAUTES_ALPES'

A named query is fetched at its first use: poll ``sector?query=communes&lat=…&lon=…`` until 200.
Settings come from the environment (``PASSERELLE_*``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from passerelle.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchhub import serve_one_instance

SLUG = "bench"
ROOT = Path(__file__).resolve().parent.parent.parent
LAYERS = {  # layer names: file names (geojson protocol), WFS type names (MapServer's mapfile)
    "geojson": {"communes": "communes-05", "secteurs": "secteurs-collecte-gap"},
    "wfs": {"communes": "communes", "secteurs": "secteurs_collecte"},
}


def config(protocol: str, service_url: str) -> dict[str, Any]:
    layers = LAYERS[protocol]
    return {
        "protocol": protocol,
        "service_url": service_url,
        "queries": {
            "communes": {"layer": layers["communes"], "id_template": "{insee}", "text_template": "{nom}"},
            "secteurs": {
                "layer": layers["secteurs"],
                "id_template": "{secteur}",
                "text_template": "{nom} (collecte : {jour_collecte})",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--protocol", choices=sorted(LAYERS), default="geojson")
    parser.add_argument("--service-url", default=str(ROOT / "demo" / "data" / "gis"))
    args = parser.parse_args()

    from connectors.sig.opengis import OpenGIS

    instance = {"slug": SLUG, "title": "SIG (benchmark)", "config": config(args.protocol, args.service_url)}
    settings = Settings(data_dir=args.data_dir)
    serve_one_instance(OpenGIS, instance, settings, host=args.host, port=args.port, backlog=2048)


if __name__ == "__main__":
    main()
