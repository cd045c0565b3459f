"""The business application of the cache benchmark: ``GET /answer?q=…&delay=S`` answers after
``S`` seconds and counts its calls; ``GET /count`` tells how many it answered.

python upstream.py --port 8100
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


def make_app() -> web.Application:
    calls = 0

    async def answer(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(float(request.query.get("delay", "0.02")))
        return web.json_response({"q": request.query.get("q"), "text": "Médiathèque centrale", "open": True})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"calls": calls})

    app = web.Application()
    app.router.add_get("/answer", answer)
    app.router.add_get("/count", count)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
