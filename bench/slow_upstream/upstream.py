"""The slow business application of the benchmark: answers every GET after a fixed delay.

python upstream.py --port 8100 --delay 0.2
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

ANSWER = b'{"id": "42", "text": "Rue de la Paix", "status": "ok"}'


def make_app(delay: float) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    # backlog: 256 clients connect at once through the hub's or the baseline's pools.
    web.run_app(make_app(args.delay), host=args.host, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
