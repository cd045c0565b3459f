"""Helpers of the jobs tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.metrics import REGISTRY
from passerelle.storage.models import Job

Sessions = async_sessionmaker[AsyncSession]


async def job_row(sessionmaker: Sessions, job_id: int) -> Job:
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
    assert job is not None, f"no job {job_id}"
    return job


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` (a "did not hang" bound)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {what or check}")
        await asyncio.sleep(0.02)


async def wait_for_state(sessionmaker: Sessions, job_id: int, *states: str, timeout: float = 10.0) -> Job:
    async def reached() -> Job | None:
        job = await job_row(sessionmaker, job_id)
        return job if job.state in states else None

    return await eventually(reached, timeout, f"job {job_id} in state {states}")


async def set_job(sessionmaker: Sessions, job_id: int, **values: Any) -> None:
    async with sessionmaker() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(**values))
        await session.commit()


def job_runs(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("passerelle_job_runs_total", {"kind": kind, "outcome": outcome}) or 0.0
