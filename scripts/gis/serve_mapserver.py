"""Fill in the MapServer 8 mapfiles and config file of scripts/gis/ into a directory, and serve them.

    python3 scripts/gis/serve_mapserver.py --port 5080 --workdir /tmp/x [--backlog 128]

The same MapServer as scripts/with-gis.sh starts for the tests (the templates
``hautes-alpes.map.tpl`` and ``mapserver.conf.tpl``, the layers of demo/data/gis/, the CGI
binary run once per request by ``mapserv_http.py``), as one Python command, for the
benchmarks (bench/gis/). The aliases are ``HAUTES_ALPES`` and ``HAUTES_ALPES_COUNTED``:

    http://127.0.0.1:PORT/cgi-bin/mapserv?map=HAUTES_ALPES&SERVICE=WFS&…

``--backlog`` is the listen queue of the HTTP server (Python's default is 5, which drops
connections when many clients connect at once, as a benchmark's do).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "demo" / "data" / "gis"
MAPSERV = "/usr/lib/cgi-bin/mapserv"
PREFIX = "/cgi-bin/mapserv"


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    return template


def write_config(workdir: Path, port: int, data: Path = DATA) -> Path:
    """Write both mapfiles and the config file MapServer 8 needs into ``workdir``; return the config
    file's path (for ``MAPSERVER_CONFIG_FILE``). ``port`` is the one the server will listen on (the
    capabilities and OGC API links carry it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    mapfile = (HERE / "hautes-alpes.map.tpl").read_text()
    for alias, name, counted in (("HAUTES_ALPES", "hautes-alpes", "false"),
                                 ("HAUTES_ALPES_COUNTED", "hautes-alpes-counted", "true")):  # fmt: skip
        values = {
            "DATA": str(data),
            "URL": f"http://127.0.0.1:{port}{PREFIX}?map={alias}",
            "NUMBER_MATCHED": counted,
            "OGCAPI_URL": f"http://127.0.0.1:{port}{PREFIX}/{alias}/ogcapi",
        }
        (workdir / f"{name}.map").write_text(fill(mapfile, values))
    config = workdir / "mapserver.conf"
    config.write_text(fill((HERE / "mapserver.conf.tpl").read_text(), {"WORKDIR": str(workdir)}))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 is served")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="where the mapfiles and config are written")
    parser.add_argument("--mapserv", default=MAPSERV)
    parser.add_argument("--backlog", type=int, default=128, help="listen queue of the HTTP server")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if not os.access(args.mapserv, os.X_OK):
        sys.exit(f"serve_mapserver: {args.mapserv} is missing (apt-get install cgi-mapserver mapserver-bin)")
    os.environ["MAPSERVER_CONFIG_FILE"] = str(write_config(args.workdir.resolve(), args.port))

    sys.path.insert(0, str(HERE))
    from mapserv_http import MapservServer

    class Server(MapservServer):
        request_queue_size = args.backlog

    Server(args.port, args.mapserv, PREFIX, args.verbose).serve_forever()


if __name__ == "__main__":
    main()
