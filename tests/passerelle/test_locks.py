"""Run-once-cluster-wide locks (passerelle.locks), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from passerelle import locks
from passerelle.hub import HUB
from passerelle.storage.models import PeriodicLock, utcnow


async def expire(sessionmaker, name: str) -> None:
    """End a hold now, without waiting for it (20 concurrent claims may take longer than a short hold)."""
    async with sessionmaker() as session:
        await session.execute(
            update(PeriodicLock).where(PeriodicLock.name == name).values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


@pytest.fixture
async def sessionmaker(hub_app, hub_client):
    return hub_app[HUB].sessionmaker


async def test_one_claim_wins_until_the_hold_expires(sessionmaker):
    assert await locks.claim(sessionmaker, "sample/one/refresh", hold=0.3)
    assert not await locks.claim(sessionmaker, "sample/one/refresh", hold=0.3)
    # Another name is another lock.
    assert await locks.claim(sessionmaker, "sample/two/refresh", hold=0.3)
    await asyncio.sleep(0.4)
    assert await locks.claim(sessionmaker, "sample/one/refresh", hold=0.3)


async def test_concurrent_claims_elect_exactly_one(sessionmaker):
    # No row yet: the processes race to insert it.
    results = await asyncio.gather(*(locks.claim(sessionmaker, "sample/race", hold=60) for _ in range(20)))
    assert results.count(True) == 1
    # Held: nobody else gets it.
    results = await asyncio.gather(*(locks.claim(sessionmaker, "sample/race", hold=60) for _ in range(20)))
    assert results.count(True) == 0
    # Expired: the processes race to update it.
    await expire(sessionmaker, "sample/race")
    results = await asyncio.gather(*(locks.claim(sessionmaker, "sample/race", hold=60) for _ in range(20)))
    assert results.count(True) == 1
    states = await locks.lock_states(sessionmaker, prefix="sample/")
    assert [state.name for state in states] == ["sample/race"]
    assert states[0].owner == locks.PROCESS_ID


async def test_finish_records_the_outcome(sessionmaker):
    assert await locks.claim(sessionmaker, "sample/job", hold=60)
    await locks.finish(sessionmaker, "sample/job", error="ValueError: boom")
    [state] = await locks.lock_states(sessionmaker, prefix="sample/job")
    assert state.last_error == "ValueError: boom"
    assert state.last_finished is not None and state.last_started is not None
