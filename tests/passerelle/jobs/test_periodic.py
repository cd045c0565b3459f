"""Periodic jobs follow the live instances, really run, and run once per period cluster-wide."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from sqlalchemy import update

from passerelle import Connector, locks, periodic
from passerelle.connectors import EmptyConfig, InstanceInfo, PeriodicJob
from passerelle.jobs import PeriodicJobs, PeriodicService, run_periodic
from passerelle.settings import Settings
from passerelle.storage.models import PeriodicLock
from tests.passerelle.jobs.chores import Chores
from tests.passerelle.jobs.support import eventually, job_runs


class Ticker(Connector):
    slug = "ticker"
    title = "Ticker"
    Config = EmptyConfig
    ticks: ClassVar[list[str]] = []

    @periodic(seconds=1, description="Counts.")
    async def tick(self) -> None:
        self.ticks.append(self.instance.slug)

    @periodic(seconds=3600, description="Fails.")
    async def fail(self) -> None:
        raise RuntimeError("boom")


def ticker(slug: str) -> Ticker:
    return Ticker(InstanceInfo(1, "ticker", slug, slug), EmptyConfig(), Settings())


def test_declarations_are_collected():
    assert [(j.method_name, j.seconds) for j in Ticker.periodic_jobs] == [("tick", 1), ("fail", 3600)]
    with pytest.raises(ValueError):
        periodic(seconds=0)


async def test_sync_follows_instances_and_jobs_run():
    Ticker.ticks.clear()
    jobs = PeriodicJobs()
    jobs.start()
    try:
        first = ticker("a")
        jobs.sync([first])
        assert jobs.job_ids == ["ticker/a/fail", "ticker/a/tick"]
        await asyncio.sleep(1.3)
        assert Ticker.ticks.count("a") >= 1
        replacement = ticker("a")
        jobs.sync([replacement, ticker("b")])
        assert jobs.job_ids == ["ticker/a/fail", "ticker/a/tick", "ticker/b/fail", "ticker/b/tick"]
        assert jobs.scheduler.get_job("ticker/a/tick").args[0] is replacement
        jobs.sync([])
        assert jobs.job_ids == []
    finally:
        jobs.shutdown()


async def test_a_failing_job_is_logged_not_raised(capsys):
    await run_periodic(ticker("x"), Ticker.periodic_jobs[1])
    assert "periodic job failed" in capsys.readouterr().out


# -- once cluster-wide ---------------------------------------------------------------


def twin(connector: Chores) -> Chores:
    """The same instance as another hub process would build it."""
    return Chores(connector.instance, connector.config, connector.settings)


async def test_a_periodic_job_runs_once_per_period_across_processes(hub, chores):
    tick = PeriodicJob("tick", 60, "Counts its runs.")  # the lock is held 54 s
    done_before = job_runs("periodic", "done")
    others = [twin(chores) for _ in range(5)]
    await asyncio.gather(*(run_periodic(c, tick, hub.sessionmaker) for c in [chores, *others]))
    assert Chores.calls["tick"] == 1
    await asyncio.gather(*(run_periodic(c, tick, hub.sessionmaker) for c in others))
    assert Chores.calls["tick"] == 1  # same period
    async with hub.sessionmaker() as session:  # the next period
        await session.execute(update(PeriodicLock).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    await asyncio.gather(*(run_periodic(c, tick, hub.sessionmaker) for c in others))
    assert Chores.calls["tick"] == 2
    assert job_runs("periodic", "done") == done_before + 2
    [state] = await locks.lock_states(hub.sessionmaker, prefix="periodic:chores/home/tick")
    assert state.owner == locks.PROCESS_ID and state.last_error == "" and state.last_finished is not None


async def test_two_schedulers_on_one_database_run_a_job_once_per_period(hub, chores):
    first, second = PeriodicJobs(hub.sessionmaker), PeriodicJobs(hub.sessionmaker)
    first.start()
    second.start()
    try:
        first.sync([chores])
        second.sync([twin(chores)])
        # Both fire about 1 s after their start, within milliseconds of each other.
        await eventually(lambda: asyncio.sleep(0, Chores.calls["tick"] >= 1), what="a tick")
        await asyncio.sleep(0.5)
    finally:
        await first.stop(0)
        await second.stop(0)
    assert Chores.calls["tick"] == 1


async def test_a_failing_periodic_job_records_its_error_on_its_lock(hub):
    failed_before = job_runs("periodic", "failed")
    connector = ticker("x")
    await run_periodic(connector, Ticker.periodic_jobs[1], hub.sessionmaker)
    [state] = await locks.lock_states(hub.sessionmaker, prefix="periodic:ticker/x/fail")
    assert state.last_error == "RuntimeError: boom"
    assert job_runs("periodic", "failed") == failed_before + 1


async def test_the_periodic_service_follows_the_registry(hub, make_instance):
    service = PeriodicService(hub.registry, hub.sessionmaker)
    await service.start()
    try:
        assert service.jobs.job_ids == []
        await make_instance("chores", "home")
        assert service.jobs.job_ids == ["chores/home/tick"]
    finally:
        await service.stop(0)
    assert service.jobs.sync not in hub.registry.listeners
    assert not service.jobs.scheduler.running
