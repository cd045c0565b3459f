"""Periodic jobs follow the live instances and really run."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from passerelle import Connector, periodic
from passerelle.connectors import EmptyConfig, InstanceInfo
from passerelle.jobs import PeriodicJobs, run_periodic
from passerelle.settings import Settings


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
