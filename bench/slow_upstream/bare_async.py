"""The reference async handler of the issue's figures: aiohttp awaiting the slow application
through one shared ClientSession with no connection cap (``TCPConnector(limit=0)``), and
nothing else (no routing to instances, no access check, no envelope, no metrics).

    python bare_async.py --port 8200 --upstream http://127.0.0.1:8100/item
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
from aiohttp import web

from passerelle.cli import use_uvloop

SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_app(upstream: str) -> web.Application:
    async def session_context(app: web.Application):  # type: ignore[no-untyped-def]
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[SESSION].close()

    async def fetch(request: web.Request) -> web.Response:
        async with request.app[SESSION].get(upstream) as answer:
            data = await answer.json()
        return web.Response(body=orjson.dumps({"err": 0, "data": data}), content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_get("/bare/proxy/fetch", fetch)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    use_uvloop()  # the event loop `passerelle serve` runs on: the comparison is about the framework
    web.run_app(make_app(args.upstream), host=args.host, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
