"""The durable job queue: one-off work queued by connectors, stored in the ``job`` table.

A connector queues ``await self.add_job("method", {...})``; a runner
(:mod:`passerelle.jobs.runner`) claims due jobs, calls ``await connector.method(**params)``
and records the outcome here. Every function is one statement or one short transaction,
so that any number of processes may share the table:

- :func:`claim` takes due pending jobs, and running jobs whose lease expired (their
  process died), marks them running for a lease and counts an attempt, in one UPDATE.
  On PostgreSQL its subquery locks the rows ``FOR UPDATE SKIP LOCKED``: concurrent
  runners skip each other's rows instead of waiting for them. SQLite has no row locks
  and needs none: it runs one writer at a time, so the UPDATE is atomic. One runner
  process is expected on SQLite; more are correct but take turns at every write.
- Every write about a running job is guarded by the runner id and the attempt that
  claimed it: a runner that lost its lease (another one took the job, or an
  administrator cancelled it) changes nothing.

Delivery is at least once: a process killed after a job's side effect and before
recording "done" leaves it to be run again.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import FunctionType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.redaction import redact_text
from passerelle.storage.models import ConnectorInstance, Job, utcnow

if TYPE_CHECKING:
    from passerelle.connectors import Connector
    from passerelle.settings import Settings

__all__ = [
    "ACTIVE",
    "STATES",
    "JobStateError",
    "RetryLater",
    "backoff",
    "cancel_job",
    "citizen_jobs",
    "claim",
    "count_by_state",
    "describe_error",
    "enqueue",
    "erase_citizen_jobs",
    "get_job",
    "job_method",
    "list_jobs",
    "mark_done",
    "mark_failed",
    "mark_retry",
    "purge_finished",
    "release",
    "renew",
    "retry_job",
]

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
STATES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE = (PENDING, RUNNING)

# A job may postpone itself this many times without counting an attempt; after
# that, each postponement counts, so that max_attempts ends a job that never runs.
MAX_FREE_POSTPONEMENTS = 100
ERROR_MAX_LENGTH = 2000

Sessions = async_sessionmaker[AsyncSession]


class RetryLater(Exception):
    """Raised by a queued job to run again later without counting a failed attempt:
    ``raise RetryLater(after=300, reason="the office is closed")``.

    ``after`` is seconds from now or a datetime. A job postponed more than
    ``MAX_FREE_POSTPONEMENTS`` times counts each further postponement as an attempt.
    """

    def __init__(self, after: float | datetime = 300, reason: str = "") -> None:
        self.after = after
        self.reason = reason
        super().__init__(reason or f"postponed by {after}")

    def delay(self) -> float:
        return seconds_until(self.after)


class JobStateError(Exception):
    """An administrator's action that the job's state does not allow."""


def seconds_until(after: float | datetime) -> float:
    if isinstance(after, datetime):
        moment = after if after.tzinfo is not None else after.replace(tzinfo=UTC)
        return max(0.0, (moment - utcnow()).total_seconds())
    return max(0.0, float(after))


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retrying after failed attempt number ``attempt`` (1, 2…): doubling from
    ``base``, capped at ``cap``, jittered down by up to a half so that jobs that failed
    together (an application that was down) are not all retried at the same instant."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def describe_error(exc: BaseException) -> str:
    """The error recorded for a failed job: class and message, redacted and truncated."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(text)[:ERROR_MAX_LENGTH]


# -- queueing ------------------------------------------------------------------------

_wakers: set[Callable[[], None]] = set()


def add_waker(callback: Callable[[], None]) -> None:
    """``callback`` is called when a job is queued in this process (a runner then claims at once)."""
    _wakers.add(callback)


def remove_waker(callback: Callable[[], None]) -> None:
    _wakers.discard(callback)


def notify() -> None:
    for callback in list(_wakers):
        # A runner of an event loop that is closed (a test that did not stop it) is ignored.
        with contextlib.suppress(RuntimeError):
            callback()


def job_method(connector: Connector, method: str) -> Callable[..., Awaitable[Any]] | None:
    """The async method named ``method`` that a job of ``connector`` may call, or None."""
    # Looked up statically: a property (``http``, ``links``) must not run to be refused.
    declared = inspect.getattr_static(connector, method, None) if not method.startswith("_") else None
    if not isinstance(declared, FunctionType):
        return None
    function = getattr(connector, method)
    return function if inspect.iscoroutinefunction(function) else None


def check_call(connector: Connector, method: str, params: Any) -> None:
    """Refuse, at queueing time, a job that could never run."""
    where = f"{type(connector).__name__}.{method}"
    # Looked up statically: a property (``http``, ``links``) must not run to be refused.
    declared = inspect.getattr_static(connector, method, None) if not method.startswith("_") else None
    if not isinstance(declared, FunctionType):
        raise ValueError(f"cannot queue a job: {type(connector).__name__} has no method '{method}'")
    function = getattr(connector, method)
    if not inspect.iscoroutinefunction(function):
        raise ValueError(f"cannot queue a job: {where} is not an async method (async def)")
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise ValueError(f"cannot queue a job: the params of {where} must be a dict of argument names to values")
    try:
        round_trip = json.loads(json.dumps(params, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot queue a job: the params of {where} are not JSON-serialisable ({exc})") from None
    if round_trip != params:
        raise ValueError(
            f"cannot queue a job: the params of {where} would not come back as given from JSON "
            "(use lists, not tuples, and string keys)"
        )
    try:
        inspect.signature(function).bind(**params)
    except TypeError as exc:
        signature = inspect.signature(function)
        raise ValueError(f"cannot queue a job: the params do not fit {where}{signature}: {exc}") from None


async def enqueue(
    sessionmaker: Sessions,
    connector: Connector,
    method: str,
    params: dict[str, Any],
    *,
    natural_id: str | None = None,
    after: float | datetime | None = None,
    max_attempts: int | None = None,
) -> int:
    """Queue ``await connector.<method>(**params)``; see :meth:`Connector.add_job`."""
    check_call(connector, method, params)
    if natural_id is not None and not (0 < len(natural_id) <= 256):
        raise ValueError("cannot queue a job: natural_id must hold 1 to 256 characters")
    if max_attempts is None:
        max_attempts = connector.settings.job_max_attempts
    if max_attempts < 1:
        raise ValueError("cannot queue a job: max_attempts must be at least 1")
    now = utcnow()
    if isinstance(after, datetime):
        run_after = after if after.tzinfo is not None else after.replace(tzinfo=UTC)
    else:
        run_after = now + timedelta(seconds=max(0.0, float(after or 0)))
    instance_id = connector.instance.id
    async with sessionmaker() as session:
        if natural_id is not None:
            existing = await _active_job(session, instance_id, method, natural_id)
            if existing is not None:
                return existing
        job = Job(
            instance_id=instance_id,
            method=method,
            params=params,
            natural_id=natural_id,
            max_attempts=max_attempts,
            run_after=run_after,
            created=now,
            updated=now,
        )
        session.add(job)
        try:
            await session.commit()
        except IntegrityError:
            # Another process queued the same natural_id between our check and insert.
            await session.rollback()
            if natural_id is None:
                raise
            existing = await _active_job(session, instance_id, method, natural_id)
            if existing is None:
                raise
            return existing
        job_id = job.id
    if run_after <= now:
        notify()
    return job_id


async def _active_job(session: AsyncSession, instance_id: int, method: str, natural_id: str) -> int | None:
    return await session.scalar(
        select(Job.id).where(
            Job.instance_id == instance_id,
            Job.method == method,
            Job.natural_id == natural_id,
            Job.state.in_(ACTIVE),
        )
    )


# -- running -------------------------------------------------------------------------


async def claim(sessionmaker: Sessions, owner: str, limit: int, lease: float) -> list[Job]:
    """Reserve up to ``limit`` due jobs for ``owner`` during ``lease`` seconds, one attempt counted."""
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            or_(
                and_(Job.state == PENDING, Job.run_after <= now),
                # The process running it died (or lost the database for longer than the lease).
                and_(
                    Job.state == RUNNING,
                    or_(Job.locked_until.is_(None), Job.locked_until < now),
                    Job.locked_by != owner,
                ),
            )
        )
        .order_by(Job.run_after, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(
            state=RUNNING,
            locked_by=owner,
            locked_until=now + timedelta(seconds=lease),
            attempts=Job.attempts + 1,
            updated=now,
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    async with sessionmaker() as session:
        jobs = list((await session.scalars(statement)).all())
        await session.commit()
    return sorted(jobs, key=lambda job: (job.run_after, job.id))


async def renew(sessionmaker: Sessions, owner: str, ids: Sequence[int], lease: float) -> set[int]:
    """Extend the lease of the jobs ``owner`` still holds among ``ids``; returns those."""
    if not ids:
        return set()
    async with sessionmaker() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.locked_by == owner, Job.state == RUNNING)
            .values(locked_until=utcnow() + timedelta(seconds=lease))
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        held = set(result.scalars().all())
        await session.commit()
    return held


async def _finish(sessionmaker: Sessions, job: Job, **values: Any) -> bool:
    """Write the outcome of the attempt ``job`` was claimed for; False if it is no longer held."""
    now = utcnow()
    async with sessionmaker() as session:
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.state == RUNNING,
                Job.locked_by == job.locked_by,
                Job.attempts == job.attempts,
            )
            .values(locked_by="", locked_until=None, updated=now, **values)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def mark_done(sessionmaker: Sessions, job: Job) -> bool:
    return await _finish(sessionmaker, job, state=DONE, done=utcnow())


async def mark_failed(sessionmaker: Sessions, job: Job, error: str) -> bool:
    return await _finish(sessionmaker, job, state=FAILED, last_error=error)


async def mark_retry(
    sessionmaker: Sessions, job: Job, error: str, delay: float, *, count_attempt: bool = True, postponed: bool = False
) -> bool:
    return await _finish(
        sessionmaker,
        job,
        state=PENDING,
        run_after=utcnow() + timedelta(seconds=delay),
        last_error=error,
        attempts=job.attempts if count_attempt else job.attempts - 1,
        postponements=job.postponements + 1 if postponed else job.postponements,
    )


async def release(sessionmaker: Sessions, owner: str, ids: Sequence[int]) -> int:
    """Give back jobs a stopping runner did not finish: pending again, attempt not counted."""
    if not ids:
        return 0
    async with sessionmaker() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.locked_by == owner, Job.state == RUNNING)
            .values(state=PENDING, attempts=Job.attempts - 1, locked_by="", locked_until=None, updated=utcnow())
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count_by_state(sessionmaker: Sessions) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = (await session.execute(select(Job.state, func.count()).group_by(Job.state))).all()
    counts = dict.fromkeys(STATES, 0)
    counts.update({state: count for state, count in rows})
    return counts


# -- administration ------------------------------------------------------------------

JobRow = tuple[Job, str, str]  # the job, its instance's type and slug


def _with_instance() -> Any:
    return select(Job, ConnectorInstance.type, ConnectorInstance.slug).join(
        ConnectorInstance, ConnectorInstance.id == Job.instance_id
    )


async def list_jobs(
    sessionmaker: Sessions,
    *,
    state: str | None = None,
    type_slug: str | None = None,
    slug: str | None = None,
    method: str | None = None,
    natural_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[JobRow], int]:
    """Jobs matching the filters, newest first, and how many match in all."""
    conditions = []
    if state is not None:
        conditions.append(Job.state == state)
    if type_slug is not None:
        conditions.append(ConnectorInstance.type == type_slug)
    if slug is not None:
        conditions.append(ConnectorInstance.slug == slug)
    if method is not None:
        conditions.append(Job.method == method)
    if natural_id is not None:
        conditions.append(Job.natural_id == natural_id)
    async with sessionmaker() as session:
        query = _with_instance().where(*conditions).order_by(Job.id.desc()).limit(limit).offset(offset)
        rows = (await session.execute(query)).all()
        total = await session.scalar(
            select(func.count())
            .select_from(Job)
            .join(ConnectorInstance, ConnectorInstance.id == Job.instance_id)
            .where(*conditions)
        )
    return [(job, type_slug, slug) for job, type_slug, slug in rows], int(total or 0)


async def get_job(sessionmaker: Sessions, job_id: int) -> JobRow | None:
    async with sessionmaker() as session:
        row = (await session.execute(_with_instance().where(Job.id == job_id))).first()
    return None if row is None else (row[0], row[1], row[2])


async def retry_job(sessionmaker: Sessions, job_id: int) -> None:
    """A failed or cancelled job runs again now, with all its attempts."""
    now = utcnow()
    async with sessionmaker() as session:
        try:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state.in_((FAILED, CANCELLED)))
                .values(
                    state=PENDING,
                    attempts=0,
                    postponements=0,
                    run_after=now,
                    locked_by="",
                    locked_until=None,
                    done=None,
                    updated=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise JobStateError(
                f"job {job_id} cannot be retried: another job of its instance with the same method and "
                "natural_id is pending or running"
            ) from None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await _refuse(sessionmaker, job_id, "retried", "failed or cancelled")
    notify()


async def cancel_job(sessionmaker: Sessions, job_id: int) -> None:
    """A pending job will not run; a running one is stopped by its runner at its next lease
    renewal (what the job already did stays done)."""
    async with sessionmaker() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_(ACTIVE))
            .values(state=CANCELLED, locked_until=None, updated=utcnow())
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await _refuse(sessionmaker, job_id, "cancelled", "pending or running")


async def _refuse(sessionmaker: Sessions, job_id: int, action: str, allowed: str) -> None:
    async with sessionmaker() as session:
        state = await session.scalar(select(Job.state).where(Job.id == job_id))
    if state is None:
        raise LookupError(f"no job {job_id}")
    raise JobStateError(f"job {job_id} is {state}: only {allowed} jobs can be {action}")


async def purge_finished(sessionmaker: Sessions, settings: Settings) -> int:
    """Delete the jobs finished (done, failed, cancelled) more than ``JOB_RETENTION_DAYS``
    ago; how many. Pending and running jobs are never purged, however old."""
    cutoff = utcnow() - timedelta(days=settings.job_retention_days)
    async with sessionmaker() as session:
        result = await session.execute(
            delete(Job).where(Job.state.in_((DONE, FAILED, CANCELLED))).where(Job.updated < cutoff)
        )
        await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _mentions(name_id: str) -> Any:
    # Parameters are free JSON: a NameID may be anywhere in them.
    return cast(Job.params, Text).contains(name_id, autoescape=True)


async def citizen_jobs(sessionmaker: Sessions, name_id: str) -> list[dict[str, Any]]:
    """The jobs whose parameters mention this NameID (right of access)."""
    async with sessionmaker() as session:
        result = await session.execute(
            select(Job.id, ConnectorInstance.type, ConnectorInstance.slug, Job.method, Job.state, Job.created)
            .join(ConnectorInstance, Job.instance_id == ConnectorInstance.id)
            .where(_mentions(name_id))
            .order_by(Job.id)
        )
        return [
            {"id": id_, "instance": f"{type_}/{slug}", "method": method, "state": state, "created": created}
            for id_, type_, slug, method, state, created in result.all()
        ]


async def erase_citizen_jobs(sessionmaker: Sessions, name_id: str) -> int:
    """Delete the jobs whose parameters mention this NameID, pending ones included: an
    erasure stops what the hub would still do with the citizen's data. A job running now
    finishes, but its end is not recorded (its row is gone)."""
    async with sessionmaker() as session:
        result = await session.execute(delete(Job).where(_mentions(name_id)))
        await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
