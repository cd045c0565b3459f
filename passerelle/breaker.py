"""Circuit breakers: one per upstream (``scheme://host:port``) of each instance's client.

::

              N consecutive failures                 open duration elapsed
    CLOSED ───────────────────────────▶ OPEN ─────────────────────────────▶ HALF-OPEN
      ▲                                  ▲                                      │
      │                                  └──────── the probe call fails ◀──────┤
      └────────────────────────────────────────── the probe call succeeds ◀────┘

- **closed**: calls go through; a failure (connection error, timeout, HTTP 5xx or
  429) adds one to the count of consecutive failures, any other answer resets it.
- **open**: every call is answered at once with :class:`~passerelle.envelope.BreakerOpen`
  (HTTP 503), without calling the application, until ``open_duration`` has passed.
- **half-open**: one call, the probe, goes through; concurrent calls meanwhile get
  ``BreakerOpen``. The probe's success closes the breaker, its failure opens it again
  for another ``open_duration``.

Results of calls that started before the breaker opened are ignored: only the probe
decides. A breaker lives in one process (each hub process has its own) and with its
instance's client: changing an instance's configuration starts it closed again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import structlog

from passerelle.envelope import BreakerOpen

logger = structlog.get_logger("passerelle.breaker")

__all__ = ["BreakerState", "CircuitBreaker", "Permit"]


class BreakerState(IntEnum):
    """The values of the ``passerelle_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Permit:
    """Leave to make one call (one attempt), given by :meth:`CircuitBreaker.acquire`."""

    generation: int
    probe: bool


class CircuitBreaker:
    """The breaker of one upstream. ``threshold`` 0 disables it (it never opens).

    Calls go ``permit = breaker.acquire()`` (raises ``BreakerOpen``), then exactly one of
    ``succeeded(permit)``, ``failed(permit)`` or ``released(permit)`` (the call was
    cancelled: it says nothing about the application).
    """

    def __init__(
        self,
        instance: str,
        upstream: str,
        *,
        threshold: int = 5,
        open_duration: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 0:
            raise ValueError("the breaker threshold is a number of failures (0 disables the breaker)")
        if open_duration <= 0:
            raise ValueError("the breaker's open duration must be positive")
        self.instance = instance
        self.upstream = upstream
        self.threshold = threshold
        self.open_duration = open_duration
        self._clock = clock
        self._wall_clock = wall_clock
        # Permits are asked for on the event loop, and from SOAP transports in threads.
        self._lock = threading.Lock()
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._generation = 0
        self._opened_at: float | None = None  # clock()
        self._opened_at_wall: float | None = None  # wall_clock(), for people
        self._probing = False

    # -- what callers do -----------------------------------------------------

    def acquire(self) -> Permit:
        """A permit for one call, or ``BreakerOpen`` when the application is not to be called."""
        with self._lock:
            if self.state is BreakerState.CLOSED:
                return Permit(self._generation, probe=False)
            if self.state is BreakerState.OPEN:
                if self._clock() < self._next_probe():
                    raise self._error()
                self._transition(BreakerState.HALF_OPEN, "breaker half-open: a probe call goes through")
            if self._probing:
                raise self._error()
            self._probing = True
            return Permit(self._generation, probe=True)

    def succeeded(self, permit: Permit) -> None:
        with self._lock:
            if permit.generation != self._generation:
                return
            if permit.probe:
                self._probing = False
                self.consecutive_failures = 0
                self._opened_at = self._opened_at_wall = None
                self._generation += 1
                self._transition(BreakerState.CLOSED, "breaker closed: the probe call succeeded")
            elif self.state is BreakerState.CLOSED:
                self.consecutive_failures = 0

    def failed(self, permit: Permit) -> None:
        with self._lock:
            if permit.generation != self._generation:
                return
            self.consecutive_failures += 1
            if permit.probe:
                self._probing = False
                self._open("breaker open again: the probe call failed")
            elif self.state is BreakerState.CLOSED and self.threshold and self.consecutive_failures >= self.threshold:
                self._open("breaker open: the application failed repeatedly")

    def released(self, permit: Permit) -> None:
        """The call was cancelled before it said anything: a probe may go again."""
        with self._lock:
            if permit.probe and permit.generation == self._generation:
                self._probing = False

    # -- what operators do ---------------------------------------------------

    def reset(self) -> None:
        """Close the breaker now (admin API)."""
        with self._lock:
            previous = self.state
            self.consecutive_failures = 0
            self._opened_at = self._opened_at_wall = None
            self._probing = False
            self._generation += 1
            self.state = BreakerState.CLOSED
            logger.info("breaker reset", instance=self.instance, upstream=self.upstream, previous=previous.label)

    def snapshot(self) -> dict[str, Any]:
        """The breaker as the admin API shows it."""
        with self._lock:
            next_probe = None
            if self.state is not BreakerState.CLOSED and self._opened_at_wall is not None:
                next_probe = _utc(self._opened_at_wall + self.open_duration)
            return {
                "instance": self.instance,
                "upstream": self.upstream,
                "state": self.state.label,
                "consecutive_failures": self.consecutive_failures,
                "threshold": self.threshold,
                "open_duration": self.open_duration,
                "opened_at": _utc(self._opened_at_wall) if self._opened_at_wall is not None else None,
                "next_probe": next_probe,
            }

    # -- inside --------------------------------------------------------------

    def _next_probe(self) -> float:
        assert self._opened_at is not None
        return self._opened_at + self.open_duration

    def _open(self, event: str) -> None:
        self._opened_at = self._clock()
        self._opened_at_wall = self._wall_clock()
        self._generation += 1  # results of calls already in flight are ignored
        self._transition(BreakerState.OPEN, event)

    def _transition(self, state: BreakerState, event: str) -> None:
        previous, self.state = self.state, state
        fields: dict[str, Any] = {
            "instance": self.instance,
            "upstream": self.upstream,
            "previous": previous.label,
            "state": state.label,
            "consecutive_failures": self.consecutive_failures,
        }
        if state is BreakerState.OPEN:
            fields["next_probe"] = _utc(self._wall_clock() + self.open_duration).isoformat()
            logger.warning(event, **fields)
        else:
            logger.info(event, **fields)

    def _error(self) -> BreakerOpen:
        if self.state is BreakerState.HALF_OPEN:
            when = "a probe call is under way"
        else:
            wait = max(0.0, self._next_probe() - self._clock())
            at = _utc(self._wall_clock() + wait).strftime("%H:%M:%S UTC")
            when = f"the next try is at {at} (in {wait:.0f} s)"
        return BreakerOpen(
            f"the application is unavailable: its last {self.consecutive_failures} calls failed, "
            f"the hub does not call it for now; {when}"
        )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
