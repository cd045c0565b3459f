"""The hourly purge of what the hub keeps for a while (passerelle.retention): resource logs
and finished jobs, once per period across processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select

from passerelle.hub import HUB
from passerelle.retention import RetentionPurge
from passerelle.storage.models import Job, PeriodicLock, ResourceLog, utcnow


@pytest.fixture
def hub(hub_app, hub_client):
    return hub_app[HUB]


@pytest.fixture
async def instance_id(make_instance):
    return (await make_instance("sample", "kept")).instance.id


async def take_over_the_lock(hub) -> None:
    # The app's own purge claimed this period when it started.
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(delete(PeriodicLock).where(PeriodicLock.name == RetentionPurge.LOCK))


async def add_logs(hub, instance_id: int, ages: list[tuple[int, str]]) -> None:
    now = utcnow()
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(
            insert(ResourceLog),
            [
                {"instance_id": instance_id, "timestamp": now - timedelta(days=days), "level": 20, "message": message}
                for days, message in ages
            ],
        )


async def add_jobs(hub, instance_id: int, jobs: list[tuple[str, int, str]]) -> None:
    now = utcnow()
    async with hub.sessionmaker() as session, session.begin():
        for state, days, method in jobs:
            at = now - timedelta(days=days)
            session.add(Job(instance_id=instance_id, method=method, state=state, created=at, updated=at))


async def messages(hub) -> list[str]:
    async with hub.sessionmaker() as session:
        return list((await session.scalars(select(ResourceLog.message).order_by(ResourceLog.id))).all())


async def job_methods(hub) -> list[str]:
    async with hub.sessionmaker() as session:
        return list((await session.scalars(select(Job.method).order_by(Job.id))).all())


async def test_old_logs_and_finished_jobs_are_purged_once_per_period(hub, hub_settings, instance_id):
    from passerelle import resourcelogs
    from passerelle.jobs.queue import purge_finished

    await add_logs(hub, instance_id, [(30, "old"), (8, "just too old"), (6, "recent"), (0, "now")])
    await add_jobs(
        hub,
        instance_id,
        [
            ("done", 40, "old_done"),
            ("failed", 40, "old_failed"),
            ("cancelled", 40, "old_cancelled"),
            ("pending", 40, "old_pending"),  # never purged: it has not run yet
            ("running", 40, "old_running"),
            ("done", 5, "recent_done"),
        ],
    )
    settings = hub_settings.model_copy(update={"resource_log_retention_days": 7, "job_retention_days": 30})
    purge = RetentionPurge(hub.sessionmaker, settings, {"resource logs": resourcelogs.purge, "jobs": purge_finished})
    await take_over_the_lock(hub)
    assert await purge.run_once() == {"resource logs": 2, "jobs": 3}
    assert await messages(hub) == ["recent", "now"]
    assert await job_methods(hub) == ["old_pending", "old_running", "recent_done"]
    assert await purge.run_once() is None  # another process's turn, or the next period


async def test_a_failing_store_does_not_stop_the_others(hub, hub_settings, instance_id):
    from passerelle import resourcelogs

    async def broken(sessionmaker, settings):
        raise RuntimeError("table locked")

    await add_logs(hub, instance_id, [(30, "old")])
    purge = RetentionPurge(hub.sessionmaker, hub_settings, {"broken": broken, "resource logs": resourcelogs.purge})
    await take_over_the_lock(hub)
    assert await purge.run_once() == {"resource logs": 1}
    async with hub.sessionmaker() as session:
        lock = await session.get(PeriodicLock, RetentionPurge.LOCK)
    assert lock is not None and lock.last_error == "broken"


async def test_the_service_purges_periodically(hub, hub_settings, instance_id):
    from passerelle import resourcelogs

    await take_over_the_lock(hub)
    purge = RetentionPurge(hub.sessionmaker, hub_settings, {"resource logs": resourcelogs.purge}, interval=0.05)
    await purge.start()
    try:
        for round_ in range(2):
            await add_logs(hub, instance_id, [(10, f"old {round_}")])
            deadline = asyncio.get_running_loop().time() + 5
            while await messages(hub) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            assert await messages(hub) == []
    finally:
        await asyncio.wait_for(purge.stop(1), 5)
