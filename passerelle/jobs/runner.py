"""The job runner: the service that runs queued jobs in a hub process.

``serve`` runs one in-process when ``RUN_JOBS`` is set, ``passerelle worker`` always
does. A runner polls the queue every ``POLL_INTERVAL`` seconds (at once when this
process queues a job, or when one of its jobs ends), runs up to ``JOB_CONCURRENCY``
jobs at a time, and renews the lease of its running jobs every third of the lease
(``JOB_LEASE``). A renewal that finds a job no longer held (an administrator
cancelled it, or another runner took it after this one lost the database for longer
than the lease) stops that job.

A job whose instance this process cannot run (deleted instances take their jobs
with them; here: unknown to this process after a reload, or broken) counts a failed
attempt with a clear error, and is retried like any failure: an administrator may
fix the configuration meanwhile.

``stop(grace)`` stops claiming, lets running jobs finish for ``grace`` seconds, then
cancels the others and releases them: pending again, the attempt not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING

import structlog
from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle import metrics
from passerelle.jobs import queue
from passerelle.locks import PROCESS_ID
from passerelle.storage.models import ConnectorInstance, Job

if TYPE_CHECKING:
    from passerelle.connectors import Connector
    from passerelle.instances import InstanceRegistry
    from passerelle.settings import Settings

logger = structlog.get_logger("passerelle.jobs")

POLL_INTERVAL = 1.0
BACKOFF_BASE = 30.0  # seconds before the first retry; doubled at each failed attempt
BACKOFF_CAP = 3600.0
COUNT_INTERVAL = 5.0  # seconds between two counts of jobs by state (the passerelle_jobs gauge)
CANCEL_WAIT = 5.0  # seconds a cancelled job gets to unwind before its runner stops waiting for it


class JobUnavailable(Exception):
    """The job cannot run in this process (its instance or method is missing)."""


class JobRunner:
    """A :class:`passerelle.hub.Service` running queued jobs (see the module docstring).

    Keyword arguments override the settings and module constants (tests use short ones).
    """

    name = "jobs"

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: InstanceRegistry,
        *,
        lease: float | None = None,
        concurrency: int | None = None,
        poll_interval: float | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.lease = float(lease if lease is not None else settings.job_lease)
        self.concurrency = concurrency if concurrency is not None else settings.job_concurrency
        self.poll_interval = poll_interval if poll_interval is not None else POLL_INTERVAL
        self.backoff_base = backoff_base if backoff_base is not None else BACKOFF_BASE
        self.backoff_cap = backoff_cap if backoff_cap is not None else BACKOFF_CAP
        # Several runners may share a process (tests); each holds its own jobs.
        self.owner = f"{PROCESS_ID}/{secrets.token_hex(3)}"[:128]
        self.counts: dict[str, int] = dict.fromkeys(queue.STATES, 0)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._calling: set[int] = set()  # jobs inside their connector method
        self._wake = asyncio.Event()
        self._stopping = False
        self._poller: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def running(self) -> list[int]:
        """Ids of the jobs this runner is running."""
        return sorted(self._tasks)

    async def start(self) -> None:
        metrics.register_state_collector("jobs", self.collect)
        queue.add_waker(self.wake)
        self._poller = asyncio.create_task(self._poll(), name="passerelle-jobs-poll")
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="passerelle-jobs-heartbeat")
        logger.info("job runner started", owner=self.owner, concurrency=self.concurrency, lease=self.lease)

    def wake(self) -> None:
        if not self._stopping:
            self._wake.set()

    async def stop(self, grace: float) -> None:
        self._stopping = True
        self._wake.set()
        queue.remove_waker(self.wake)
        if self._poller is not None:
            # Not cancelled: a claim cut in the middle could reserve jobs nobody runs.
            await self._poller
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        late = {job_id: task for job_id, task in self._tasks.items() if not task.done()}
        for task in late.values():
            task.cancel()
        if late:
            await asyncio.wait(late.values(), timeout=CANCEL_WAIT)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        released = 0
        try:
            released = await queue.release(self.sessionmaker, self.owner, list(late))
        except Exception:
            # Their lease expires, then another runner takes them (counting an attempt).
            logger.exception("releasing unfinished jobs failed", jobs=list(late))
        if released:
            metrics.JOB_RUNS.labels("queued", "released").inc(released)
        if self._poller is not None:
            metrics.unregister_state_collector("jobs")
        logger.info("job runner stopped", owner=self.owner, released=released)

    # -- the loops -----------------------------------------------------------------------

    async def _poll(self) -> None:
        counted = -COUNT_INTERVAL
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._tasks)
            claimed = 0
            try:
                if free > 0:
                    jobs = await queue.claim(self.sessionmaker, self.owner, free, self.lease)
                    claimed = len(jobs)
                    for job in jobs:
                        self._spawn(job)
                if time.monotonic() - counted >= COUNT_INTERVAL:
                    counted = time.monotonic()
                    await self.refresh_counts()
            except Exception:
                logger.exception("claiming jobs failed")
            if free > 0 and claimed == free:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = list(self._tasks)
            if not ids:
                continue
            try:
                held = await queue.renew(self.sessionmaker, self.owner, ids, self.lease)
            except Exception:
                logger.exception("renewing the leases of running jobs failed")
                continue
            for job_id in ids:
                task = self._tasks.get(job_id)
                if job_id not in held and job_id in self._calling and task is not None:
                    logger.warning("job no longer held by this runner (cancelled or taken over): stopped", job=job_id)
                    task.cancel()

    async def refresh_counts(self) -> None:
        self.counts = await queue.count_by_state(self.sessionmaker)

    def collect(self) -> Iterable[Metric]:
        family = metrics.gauge("passerelle_jobs", "Queued jobs by state, as last counted by the job runner.", ["state"])
        for state in queue.STATES:
            family.add_metric([state], self.counts.get(state, 0))
        yield family

    # -- one job -------------------------------------------------------------------------

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"passerelle-job-{job.id}")
        self._tasks[job.id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(job.id, None)
            self._wake.set()  # a free slot

        task.add_done_callback(forget)

    async def _run(self, job: Job) -> None:
        log = logger.bind(job=job.id, method=job.method, attempt=job.attempts)
        started = time.perf_counter()
        try:
            if job.attempts > job.max_attempts:
                error = "the process running its last attempt stopped before it ended (its lease expired)"
                await self._record(log, job, "failed", queue.mark_failed(self.sessionmaker, job, error), error=error)
                return
            try:
                connector = await self._connector(job)
                log = log.bind(instance=f"{connector.instance.type}/{connector.instance.slug}")
                self._calling.add(job.id)
                try:
                    # The connector's own log lines say which job they belong to.
                    with structlog.contextvars.bound_contextvars(job=job.id):
                        await getattr(connector, job.method)(**job.params)
                finally:
                    self._calling.discard(job.id)
            except queue.RetryLater as exc:
                await self._postponed(log, job, exc)
            except Exception as exc:
                await self._failed(log, job, exc, queue.describe_error(exc), None)
            else:
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                await self._record(log, job, "done", queue.mark_done(self.sessionmaker, job), duration_ms=duration_ms)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The outcome could not be written: the lease expires and the job runs again.
            log.exception("recording the outcome of a job failed")

    async def _postponed(self, log: structlog.typing.FilteringBoundLogger, job: Job, exc: queue.RetryLater) -> None:
        delay = exc.delay()
        reason = queue.describe_error(exc)
        if job.postponements < queue.MAX_FREE_POSTPONEMENTS:
            write = queue.mark_retry(
                self.sessionmaker, job, f"postponed: {reason}", delay, count_attempt=False, postponed=True
            )
            await self._record(log, job, "retry", write, postponed_by=delay)
            return
        error = f"postponed more than {queue.MAX_FREE_POSTPONEMENTS} times, now counted as attempts: {reason}"
        await self._failed(log, job, exc, error, delay)

    async def _failed(
        self,
        log: structlog.typing.FilteringBoundLogger,
        job: Job,
        exc: BaseException,
        error: str,
        delay: float | None,
    ) -> None:
        postponed = isinstance(exc, queue.RetryLater)
        if job.attempts >= job.max_attempts:
            write = queue.mark_failed(self.sessionmaker, job, error)
            await self._record(log, job, "failed", write, error=error, exc_info=exc, postponed=postponed)
            return
        if delay is None:
            delay = queue.backoff(job.attempts, self.backoff_base, self.backoff_cap)
        write = queue.mark_retry(self.sessionmaker, job, error, delay, postponed=postponed)
        await self._record(log, job, "retry", write, error=error, retry_in=round(delay, 3), exc_info=exc)

    async def _record(
        self,
        log: structlog.typing.FilteringBoundLogger,
        job: Job,
        outcome: str,
        write: Awaitable[bool],
        **fields: object,
    ) -> None:
        if not await write:
            log.warning("job no longer held by this runner (cancelled or taken over): outcome not recorded")
            return
        metrics.JOB_RUNS.labels("queued", outcome).inc()
        if outcome == "done":
            log.info("job done", **fields)
        elif outcome == "failed":
            log.error("job failed, no attempt left", **fields)
        else:
            log.warning("job will run again", **fields)

    async def _connector(self, job: Job) -> Connector:
        connector = self._find(job.instance_id)
        if connector is None:
            await self.registry.reload()  # the instance may be newer than this process's copy
            connector = self._find(job.instance_id)
        if connector is None:
            async with self.sessionmaker() as session:
                row = await session.get(ConnectorInstance, job.instance_id)
                key = (row.type, row.slug) if row is not None else None
            name = f"{key[0]}/{key[1]}" if key else f"#{job.instance_id}"
            reason = self.registry.broken.get(key, "not loaded") if key else "deleted"
            raise JobUnavailable(f"instance {name} is not available in this process: {reason}")
        if queue.job_method(connector, job.method) is None:
            raise JobUnavailable(f"{type(connector).__name__} has no async method '{job.method}' (any more)")
        return connector

    def _find(self, instance_id: int) -> Connector | None:
        return next((c for c in self.registry.all() if c.instance.id == instance_id), None)
