"""Periodic jobs declared by connector types (``@periodic``), run by APScheduler.

Every live instance gets one scheduled job per declared method; when the registry
reloads, jobs of replaced or deleted instances are removed and new ones added. A
job never overlaps itself (``max_instances=1``) and missed runs are coalesced.

Scope today: jobs run in every hub process that has ``run_periodic_jobs`` set.
Running each job once cluster-wide (a database lock) and the durable one-off job
queue come with the resilience work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from passerelle.connectors import Connector, PeriodicJob

logger = structlog.get_logger("passerelle.jobs")


def job_id(connector: Connector, job: PeriodicJob) -> str:
    return f"{connector.instance.type}/{connector.instance.slug}/{job.method_name}"


async def run_periodic(connector: Connector, job: PeriodicJob) -> None:
    started = time.perf_counter()
    log = logger.bind(instance=f"{connector.instance.type}/{connector.instance.slug}", job=job.method_name)
    try:
        await getattr(connector, job.method_name)()
    except Exception:
        log.exception("periodic job failed", duration_ms=round((time.perf_counter() - started) * 1000, 1))
        return
    log.debug("periodic job done", duration_ms=round((time.perf_counter() - started) * 1000, 1))


class PeriodicJobs:
    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduled: dict[str, Connector] = {}

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def sync(self, connectors: Iterable[Connector]) -> None:
        """Make the scheduled jobs match the live connectors."""
        wanted = {job_id(c, job): (c, job) for c in connectors for job in c.periodic_jobs}
        for identifier, connector in list(self._scheduled.items()):
            if identifier not in wanted or wanted[identifier][0] is not connector:
                self.scheduler.remove_job(identifier)
                del self._scheduled[identifier]
        for identifier, (connector, job) in wanted.items():
            if identifier in self._scheduled:
                continue
            self.scheduler.add_job(
                run_periodic,
                IntervalTrigger(seconds=job.seconds),
                args=(connector, job),
                id=identifier,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, job.seconds // 2),
            )
            self._scheduled[identifier] = connector

    @property
    def job_ids(self) -> list[str]:
        return sorted(self._scheduled)
