"""The floor of the GIS benchmark: a bare aiohttp handler on uvloop (as the hub runs) answering the
same small JSON document whatever the query, with no hub and no lookup. What this machine's HTTP
round trip costs, to read the hub's latencies against (bench/gis/README.md).

    python bare_server.py --port 8000
"""

from __future__ import annotations

import argparse

from aiohttp import web

from passerelle.cli import use_uvloop

BODY = (
    b'{"err":0,"data":[{"insee":"05061","nom":"Gap","code_postal":"05000","population":41293,'
    b'"id":"05061","text":"Gap"}],"point":{"lat":44.558955,"lon":6.080624}}'
)


async def answer(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    use_uvloop()  # as the hub's `serve`
    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
