"""Run-once-cluster-wide locks for periodic work (``periodic_lock`` table).

Every hub process schedules the same periodic work (connector jobs, availability
checks, log purges); before running it, a process calls :func:`claim`, which moves
the row's ``locked_until`` forward in one atomic UPDATE guarded by
``locked_until < now``. Exactly one process wins a given period, on SQLite
(writes are serialised) as on PostgreSQL (row lock taken by the UPDATE).

The hold should be a little shorter than the period, so that the next run is not
blocked by clock skew between processes, and longer than a run usually takes.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.storage.models import PeriodicLock, utcnow

__all__ = ["PROCESS_ID", "claim", "finish", "lock_states"]

# Who holds a lock or a job: readable in the admin API, unique per process.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"


async def claim(sessionmaker: async_sessionmaker[AsyncSession], name: str, hold: float) -> bool:
    """Take the lock ``name`` for ``hold`` seconds if nobody holds it; True if taken."""
    now = utcnow()
    until = now + timedelta(seconds=hold)
    async with sessionmaker() as session:
        result = await session.execute(
            update(PeriodicLock)
            .where(PeriodicLock.name == name)
            .where(or_(PeriodicLock.locked_until.is_(None), PeriodicLock.locked_until < now))
            .values(locked_until=until, owner=PROCESS_ID, last_started=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            await session.commit()
            return True
        exists = await session.scalar(select(PeriodicLock.name).where(PeriodicLock.name == name))
        if exists is not None:
            return False
        try:
            await session.execute(
                insert(PeriodicLock).values(
                    name=name, locked_until=until, owner=PROCESS_ID, last_started=now, last_error=""
                )
            )
            await session.commit()
        except IntegrityError:
            # Another process created the row first: it holds the lock for this period.
            await session.rollback()
            return False
        return True


async def finish(sessionmaker: async_sessionmaker[AsyncSession], name: str, error: str = "") -> None:
    """Record the end of a run (the lock itself expires with its hold)."""
    async with sessionmaker() as session:
        await session.execute(
            update(PeriodicLock)
            .where(PeriodicLock.name == name)
            .values(last_finished=utcnow(), last_error=error[:2000])
            .execution_options(synchronize_session=False)
        )
        await session.commit()


async def lock_states(sessionmaker: async_sessionmaker[AsyncSession], prefix: str = "") -> list[PeriodicLock]:
    """The lock rows (last start, finish and error of each periodic work), for the admin API."""
    async with sessionmaker() as session:
        query = select(PeriodicLock).order_by(PeriodicLock.name)
        if prefix:
            query = query.where(PeriodicLock.name.startswith(prefix))
        return list((await session.scalars(query)).all())
