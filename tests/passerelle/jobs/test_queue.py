"""Queueing jobs (Connector.add_job) and the queue's claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from passerelle.connectors import EmptyConfig, InstanceInfo
from passerelle.jobs import queue
from passerelle.settings import Settings
from passerelle.storage.models import Job
from tests.passerelle.jobs.chores import Chores
from tests.passerelle.jobs.support import job_row, set_job


async def count_jobs(hub) -> int:
    async with hub.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("nothing", {}, "Chores has no method 'nothing'"),
        ("_forget_calls", {}, "Chores has no method '_forget_calls'"),
        ("http", {}, "Chores has no method 'http'"),  # a property: refused without running it
        ("not_async", {}, "Chores.not_async is not an async method"),
        ("flaky", ["k", 1], "must be a dict of argument names to values"),
        ("flaky", {"key": {1, 2}, "failures": 1}, "not JSON-serialisable"),
        ("flaky", {"key": "k", "failures": math.nan}, "not JSON-serialisable"),
        ("flaky", {"key": ("a", "b"), "failures": 1}, "would not come back as given"),
        ("flaky", {"key": "k"}, "missing a required argument: 'failures'"),
        ("flaky", {"key": "k", "failures": 1, "colour": "red"}, "unexpected keyword argument 'colour'"),
    ],
)
async def test_add_job_refuses_a_job_that_could_never_run(hub, chores, method, params, message):
    with pytest.raises(ValueError, match=message):
        await chores.add_job(method, params)
    assert await count_jobs(hub) == 0


async def test_add_job_refuses_bad_options(hub, chores):
    with pytest.raises(ValueError, match="natural_id must hold 1 to 256 characters"):
        await chores.add_job("flaky", {"key": "k", "failures": 0}, natural_id="x" * 257)
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        await chores.add_job("flaky", {"key": "k", "failures": 0}, max_attempts=0)
    assert await count_jobs(hub) == 0


async def test_a_connector_outside_the_hub_cannot_queue_jobs():
    loose = Chores(InstanceInfo(1, "chores", "loose", "Loose"), EmptyConfig(), Settings())
    with pytest.raises(RuntimeError, match="only instances built by the hub can queue jobs"):
        await loose.add_job("flaky", {"key": "k", "failures": 0})


async def test_add_job_stores_the_call(hub, chores):
    before = datetime.now(UTC)
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 0})
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.method, job.params, job.state, job.attempts) == ("flaky", {"key": "k", "failures": 0}, "pending", 0)
    assert job.instance_id == chores.instance.id
    assert job.max_attempts == hub.settings.job_max_attempts
    assert job.natural_id is None
    assert job.run_after.replace(tzinfo=UTC) >= before.replace(microsecond=0)

    later = await chores.add_job("flaky", {"key": "k", "failures": 0}, after=3600, max_attempts=2)
    job = await job_row(hub.sessionmaker, later)
    assert job.max_attempts == 2
    assert job.run_after.replace(tzinfo=UTC) > before + timedelta(seconds=3500)

    moment = datetime(2040, 1, 2, 3, 4, 5, tzinfo=UTC)
    fixed = await chores.add_job("flaky", {"key": "k", "failures": 0}, after=moment)
    assert (await job_row(hub.sessionmaker, fixed)).run_after.replace(tzinfo=UTC) == moment


async def test_a_natural_id_is_not_queued_twice_while_active(hub, chores, make_instance):
    params = {"key": "k", "failures": 0}
    first = await chores.add_job("flaky", params, natural_id="invoice-42")
    assert await chores.add_job("flaky", {"key": "other", "failures": 1}, natural_id="invoice-42") == first
    # Another natural id, method or instance is another job.
    assert await chores.add_job("flaky", params, natural_id="invoice-43") != first
    assert await chores.add_job("postpone", {"key": "k", "times": 0, "after": 0}, natural_id="invoice-42") != first
    other = await make_instance("chores", "office")
    assert await other.add_job("flaky", params, natural_id="invoice-42") != first
    # Running still counts as active; once it is over, the natural id may be queued again.
    await set_job(hub.sessionmaker, first, state="running")
    assert await chores.add_job("flaky", params, natural_id="invoice-42") == first
    await set_job(hub.sessionmaker, first, state="done")
    again = await chores.add_job("flaky", params, natural_id="invoice-42")
    assert again != first


async def test_concurrent_queueing_of_one_natural_id_makes_one_job(hub, chores):
    ids = await asyncio.gather(
        *(chores.add_job("flaky", {"key": "k", "failures": 0}, natural_id="once") for _ in range(10))
    )
    assert len(set(ids)) == 1
    assert await count_jobs(hub) == 1


async def test_claims_never_overlap_and_skip_jobs_not_due(hub, chores):
    due = [await chores.add_job("flaky", {"key": str(i), "failures": 0}) for i in range(20)]
    await chores.add_job("flaky", {"key": "later", "failures": 0}, after=3600)
    claims = await asyncio.gather(*(queue.claim(hub.sessionmaker, f"runner-{i}", 3, 60) for i in range(10)))
    claimed = [job.id for jobs in claims for job in jobs]
    assert sorted(claimed) == due  # each once, the later job not among them
    assert all(job.state == "running" and job.attempts == 1 for jobs in claims for job in jobs)
    assert await queue.claim(hub.sessionmaker, "runner-x", 5, 60) == []


async def test_a_lost_lease_lets_another_runner_take_the_job_and_the_first_change_nothing(hub, chores):
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 0})
    [dead] = await queue.claim(hub.sessionmaker, "dead-process", 1, lease=60)
    assert await queue.claim(hub.sessionmaker, "alive", 1, lease=60) == []  # leased
    await set_job(hub.sessionmaker, job_id, locked_until=datetime.now(UTC) - timedelta(seconds=1))  # expired
    [alive] = await queue.claim(hub.sessionmaker, "alive", 1, lease=60)
    assert (alive.id, alive.attempts, alive.locked_by) == (job_id, 2, "alive")
    assert not await queue.mark_done(hub.sessionmaker, dead)
    assert not await queue.mark_failed(hub.sessionmaker, dead, "late")
    assert await queue.renew(hub.sessionmaker, "dead-process", [job_id], 60) == set()
    assert await queue.renew(hub.sessionmaker, "alive", [job_id], 60) == {job_id}
    assert await queue.mark_done(hub.sessionmaker, alive)
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts, job.locked_by, job.last_error) == ("done", 2, "", "")
    assert job.done is not None


async def test_release_gives_back_the_attempt(hub, chores):
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 0})
    await queue.claim(hub.sessionmaker, "stopping", 1, lease=60)
    assert await queue.release(hub.sessionmaker, "someone-else", [job_id]) == 0
    assert await queue.release(hub.sessionmaker, "stopping", [job_id]) == 1
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts, job.locked_by, job.locked_until) == ("pending", 0, "", None)


def test_backoff_doubles_with_jitter_up_to_its_cap():
    for attempt, full in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (20, 3600)]:
        delays = {queue.backoff(attempt, 30, 3600) for _ in range(50)}
        assert all(full / 2 <= delay <= full for delay in delays), (attempt, delays)
        assert len(delays) > 1  # jittered


def test_a_recorded_error_is_redacted_and_truncated():
    error = queue.describe_error(RuntimeError("cannot reach camille@example.org with password=hunter22"))
    assert error.startswith("RuntimeError: cannot reach [email] with password=")
    assert "camille" not in error and "hunter22" not in error
    assert len(queue.describe_error(ValueError("x" * 10_000))) == queue.ERROR_MAX_LENGTH
    assert queue.describe_error(KeyError()) == "KeyError"
