"""A connector type with queued-job methods, for the jobs tests (in-process and in worker
subprocesses, which import it: ``tests.passerelle.jobs.chores``)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import ClassVar

from passerelle import Connector, EmptyConfig, RetryLater, endpoint, periodic


class Chores(Connector):
    slug = "chores"
    title = "Chores"
    category = "Tests"
    description = "Job methods whose effects the tests can count."
    Config = EmptyConfig

    # Calls per key, in this process (tests reset it).
    calls: ClassVar[Counter[str]] = Counter()

    @endpoint(description="Anything.")
    async def ping(self) -> str:
        return "pong"

    async def append(self, path: str, line: str, hold_once: str | None = None, with_pid: bool = False) -> None:
        """Append ``line`` (and this process's id) to the file ``path``. With ``hold_once``, the
        first run (the one that creates that file) then waits for a long time, to be killed or stopped."""
        if hold_once is not None and not Path(hold_once).exists():
            Path(hold_once).write_text("started")
            await asyncio.sleep(60)
        # One short write in append mode: the lines of concurrent processes never interleave.
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{line} {os.getpid()}\n" if with_pid else f"{line}\n")

    async def flaky(self, key: str, failures: int, message: str = "the application said no") -> None:
        """Fail the first ``failures`` calls for ``key``."""
        self.calls[key] += 1
        if self.calls[key] <= failures:
            raise RuntimeError(message)

    async def postpone(self, key: str, times: int, after: float) -> None:
        """Ask to run later the first ``times`` calls for ``key``."""
        self.calls[key] += 1
        if self.calls[key] <= times:
            raise RetryLater(after=after, reason=f"not ready yet ({self.calls[key]})")

    async def slow(self, key: str, seconds: float, path: str) -> None:
        """Wait ``seconds``, then append ``key`` to ``path`` (an effect that a stop cuts off)."""
        self.calls[key] += 1
        await asyncio.sleep(seconds)
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{key}\n")

    def not_async(self) -> None:
        """Not a coroutine: cannot be queued."""

    @periodic(seconds=1, description="Counts its runs.")
    async def tick(self) -> None:
        self.calls["tick"] += 1
