"""Retention: what the hub stores for a while is deleted once it is older than its
setting, every hour, by one hub process at a time (:func:`passerelle.locks.claim`).

Each store gives a purger, ``async (sessionmaker, settings) -> rows deleted``:

- resource logs: ``RESOURCE_LOG_RETENTION_DAYS`` (:func:`passerelle.resourcelogs.purge`);
- finished jobs (done, failed, cancelled): ``JOB_RETENTION_DAYS``
  (:func:`passerelle.jobs.queue.purge_finished`);
- connector records past their ``ttl`` (:func:`passerelle.records.purge_expired`).

One failing purger is logged and does not stop the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle import locks
from passerelle.hub import EveryInterval
from passerelle.settings import Settings

__all__ = ["Purger", "RetentionPurge"]

logger = structlog.get_logger("passerelle.retention")

Purger = Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[int]]


class RetentionPurge(EveryInterval):
    """The hourly purge service (in ``build_services`` when periodic jobs run)."""

    name = "retention-purge"
    LOCK = "retention:purge"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        purgers: dict[str, Purger],
        *,
        interval: float = 3600.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.purgers = purgers
        self.interval = interval

    async def run_once(self) -> dict[str, int] | None:
        """Purge every store if no other process did during this period: rows deleted
        per store, or None when it was another process's turn."""
        if not await locks.claim(self.sessionmaker, self.LOCK, hold=self.interval * 0.9):
            return None
        deleted: dict[str, int] = {}
        failed: list[str] = []
        for store, purger in self.purgers.items():
            try:
                deleted[store] = await purger(self.sessionmaker, self.settings)
            except Exception:
                logger.exception("purge failed", store=store)
                failed.append(store)
        await locks.finish(self.sessionmaker, self.LOCK, error=", ".join(failed))
        if any(deleted.values()):
            logger.info("old rows purged", **{store.replace(" ", "_"): n for store, n in deleted.items()})
        return deleted
