"""Periodic jobs declared by connector types (``@periodic``), run by APScheduler,
once per period across the cluster.

Every live instance gets one scheduled job per declared method; when the registry
reloads, jobs of replaced or deleted instances are removed and new ones added. In a
process, a job never overlaps itself (``max_instances=1``) and missed runs are
coalesced.

Every process with ``RUN_PERIODIC_JOBS`` (``serve`` and ``worker`` alike) schedules
every job; when one fires, the process first takes the lock
``periodic:<type>/<slug>/<method>`` (:mod:`passerelle.locks`) for 90% of the
interval: one process runs it, the others skip this period. A run that lasts longer
than that may overlap a run started by another process in the next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle import locks, metrics
from passerelle.connectors import Connector, PeriodicJob
from passerelle.jobs.queue import describe_error

if TYPE_CHECKING:
    from passerelle.instances import InstanceRegistry

logger = structlog.get_logger("passerelle.jobs")

Sessions = async_sessionmaker[AsyncSession]
Logger = structlog.typing.FilteringBoundLogger

LOCK_PREFIX = "periodic:"
HOLD_RATIO = 0.9  # of the interval: shorter, so that clock skew between processes never skips a period


def job_id(connector: Connector, job: PeriodicJob) -> str:
    return f"{connector.instance.type}/{connector.instance.slug}/{job.method_name}"


def lock_name(connector: Connector, job: PeriodicJob) -> str:
    return LOCK_PREFIX + job_id(connector, job)


async def run_periodic(
    connector: Connector,
    job: PeriodicJob,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> None:
    """Run one periodic job now; with a ``sessionmaker``, only if no other process runs
    it this period. Failures are logged and recorded on the lock row, never raised."""
    log = logger.bind(instance=f"{connector.instance.type}/{connector.instance.slug}", job=job.method_name)
    name = lock_name(connector, job)
    if sessionmaker is not None:
        try:
            if not await locks.claim(sessionmaker, name, hold=job.seconds * HOLD_RATIO):
                log.debug("periodic job run by another process this period")
                return
        except Exception:
            log.exception("periodic job not run: its lock could not be taken")
            return
    started = time.perf_counter()
    error = ""
    try:
        await getattr(connector, job.method_name)()
    except asyncio.CancelledError:
        await _finish(sessionmaker, name, "cancelled: the process stopped during the run", log)
        raise
    except Exception as exc:
        error = describe_error(exc)
        log.exception("periodic job failed", duration_ms=round((time.perf_counter() - started) * 1000, 1))
    else:
        log.debug("periodic job done", duration_ms=round((time.perf_counter() - started) * 1000, 1))
    metrics.JOB_RUNS.labels("periodic", "failed" if error else "done").inc()
    await _finish(sessionmaker, name, error, log)


async def _finish(sessionmaker: Sessions | None, name: str, error: str, log: Logger) -> None:
    if sessionmaker is None:
        return
    try:
        await locks.finish(sessionmaker, name, error)
    except Exception:
        log.exception("the end of a periodic job could not be recorded")


class PeriodicJobs:
    """The scheduler of this process's periodic jobs. With a ``sessionmaker``, each
    run first takes its cluster-wide lock; without, every process runs every job."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduled: dict[str, Connector] = {}
        self._runs: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def stop(self, grace: float) -> None:
        """Stop scheduling; runs in progress get ``grace`` seconds, then are cancelled."""
        self.shutdown()
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a callback of the loop
        runs = [task for task in self._runs if not task.done()]
        if runs:
            _, late = await asyncio.wait(runs, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)

    async def _run(self, connector: Connector, job: PeriodicJob) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._runs.add(task)
        try:
            await run_periodic(connector, job, self.sessionmaker)
        finally:
            if task is not None:
                self._runs.discard(task)

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
                self._run,
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


class PeriodicService:
    """The :class:`passerelle.hub.Service` scheduling the periodic jobs of the live
    instances (it follows every reload of the registry), once cluster-wide."""

    name = "periodic-jobs"

    def __init__(self, registry: InstanceRegistry, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.registry = registry
        self.jobs = PeriodicJobs(sessionmaker)

    async def start(self) -> None:
        self.jobs.start()
        self.jobs.sync(self.registry.all())
        self.registry.listeners.append(self.jobs.sync)

    async def stop(self, grace: float) -> None:
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self.jobs.sync)
        await self.jobs.stop(grace)
