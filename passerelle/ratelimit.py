"""A per-upstream request rate for the outbound client (``HttpOptions.rate_limit``).

Some applications cap what one address may send (the Géoplateforme geocoder answers
HTTP 429 past 50 requests per second). Rather than being refused and retrying, the
client spaces its calls: each call gets the next free slot, ``1 / rate`` seconds after
the previous one, and waits for it. A call whose slot comes after its deadline fails
at once, without taking the slot. An HTTP 429 with ``Retry-After`` pauses every call
to that upstream until then.

The limit holds per process: N hub processes calling the same upstream need a limit
of ``rate / N`` each (docs/outbound-calls.md).
"""

from __future__ import annotations

import asyncio

from passerelle.envelope import UpstreamUnavailable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces the calls to one upstream at most ``rate`` per second."""

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("a rate limit is a positive number of calls per second")
        self.rate = rate
        self.interval = 1.0 / rate
        self._next_slot = float("-inf")  # loop time of the next free slot
        self._paused_until = float("-inf")

    async def wait(self, remaining: float) -> float:
        """Wait for this call's slot; the seconds waited. ``remaining``: seconds left before the
        call's deadline; a slot later than that raises ``UpstreamUnavailable``."""
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next_slot, self._paused_until)
        delay = slot - now
        if delay >= remaining:
            raise UpstreamUnavailable(
                f"too many calls to the application: at most {self.rate:g} per second, "
                f"and no free slot within the {remaining:.1f} s left"
            )
        # Taken before sleeping, so that concurrent callers queue behind it.
        self._next_slot = slot + self.interval
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def pause(self, seconds: float) -> None:
        """No call before ``seconds`` from now (the application said Retry-After)."""
        until = asyncio.get_running_loop().time() + seconds
        self._paused_until = max(self._paused_until, until)
