"""The test controls every simulator offers, under ``/_simulator/``:

- ``POST /_simulator/mode`` with ``{"mode": …, "delay": seconds}`` makes the simulated service
  fail or slow down (the modes are the simulator's own: ``normal``, ``500``, ``slow``…);
- ``GET /_simulator/stats``: the mode, the calls per path and the statuses answered, so that a
  test can say how many calls reached the service.

A simulator's state carries ``mode``, ``delay``, ``calls`` and ``statuses``; its middleware
counts the calls and applies the mode.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

__all__ = ["Controlled", "add_controls"]


class Controlled(Protocol):
    mode: str
    delay: float
    calls: Counter[str]
    statuses: Counter[str]


def add_controls(
    app: web.Application,
    key: web.AppKey[Any],
    modes: Sequence[str],
    *,
    extra_stats: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """Add the two control routes for the state stored under ``key``; ``extra_stats`` adds keys to the stats."""

    async def set_mode(request: web.Request) -> web.Response:
        state: Controlled = request.app[key]
        try:
            body = await request.json()
            mode, delay = body["mode"], float(body.get("delay", 0))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"mode": ..., "delay": seconds}'}, status=400)
        if mode not in modes or delay < 0:
            return web.json_response({"error": f"mode must be one of {', '.join(modes)}, delay >= 0"}, status=400)
        state.mode, state.delay = mode, delay
        return web.json_response({"mode": mode, "delay": delay})

    async def stats(request: web.Request) -> web.Response:
        state: Controlled = request.app[key]
        body = {
            "mode": state.mode,
            "total": sum(state.calls.values()),
            "calls": dict(state.calls),
            "statuses": dict(state.statuses),
        }
        if extra_stats is not None:
            body.update(extra_stats(state))
        return web.json_response(body)

    app.router.add_post("/_simulator/mode", set_mode)
    app.router.add_get("/_simulator/stats", stats)
