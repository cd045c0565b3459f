"""The job runner: runs, retries, postponements, leases and stops, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from passerelle.jobs import queue
from passerelle.metrics import REGISTRY
from passerelle.storage.database import bump_config_version
from passerelle.storage.models import ConnectorInstance
from tests.passerelle.jobs.chores import Chores
from tests.passerelle.jobs.support import eventually, job_row, job_runs, wait_for_state


async def test_a_queued_job_runs_once_and_is_done(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    done_before = job_runs("queued", "done")
    runner = make_runner()
    await runner.start()
    job_id = await chores.add_job("append", {"path": str(log), "line": "hello"})
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert log.read_text() == "hello\n"
    assert (job.attempts, job.locked_by, job.locked_until, job.last_error) == (1, "", None, "")
    assert job.done is not None
    assert job_runs("queued", "done") == done_before + 1


async def test_queueing_a_job_wakes_the_runners_of_the_process(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    runner = make_runner(poll_interval=60)
    await runner.start()
    await asyncio.sleep(0.1)  # its first poll found nothing: the next one is a minute away
    job_id = await chores.add_job("append", {"path": str(log), "line": "now"})
    await wait_for_state(hub.sessionmaker, job_id, "done", timeout=10)


async def test_a_failing_job_is_retried_until_it_succeeds(hub, chores, make_runner):
    retries_before = job_runs("queued", "retry")
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 2})
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert Chores.calls["k"] == 3
    assert job.attempts == 3
    # The error of the last failed attempt stays readable after the success.
    assert job.last_error == "RuntimeError: the application said no"
    assert job_runs("queued", "retry") == retries_before + 2


async def test_a_failed_attempt_waits_for_its_backoff(hub, chores, make_runner):
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 1})
    runner = make_runner(backoff_base=3600, backoff_cap=7200)
    await runner.start()

    async def retried() -> bool:
        job = await job_row(hub.sessionmaker, job_id)
        return job.state == "pending" and job.attempts == 1

    await eventually(retried)
    job = await job_row(hub.sessionmaker, job_id)
    # Jittered between half the delay and the delay.
    assert job.run_after.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(seconds=1700)
    assert Chores.calls["k"] == 1


async def test_a_job_failing_every_attempt_ends_failed_with_its_error_redacted(hub, chores, make_runner):
    failed_before = job_runs("queued", "failed")
    job_id = await chores.add_job(
        "flaky", {"key": "k", "failures": 99, "message": "cannot reach camille@example.org"}, max_attempts=3
    )
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "failed")
    assert Chores.calls["k"] == 3
    assert (job.attempts, job.max_attempts) == (3, 3)
    assert job.last_error == "RuntimeError: cannot reach [email]"
    assert job.done is None and job.locked_by == ""
    assert job_runs("queued", "failed") == failed_before + 1


async def test_retry_later_postpones_without_counting_an_attempt(hub, chores, make_runner):
    job_id = await chores.add_job("postpone", {"key": "k", "times": 1, "after": 3600}, max_attempts=1)
    runner = make_runner()
    await runner.start()

    async def postponed() -> bool:
        return (await job_row(hub.sessionmaker, job_id)).postponements == 1

    await eventually(postponed)
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts) == ("pending", 0)
    assert job.run_after.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(seconds=3500)
    assert job.last_error == "postponed: RetryLater: not ready yet (1)"


async def test_a_postponed_job_runs_when_due(hub, chores, make_runner):
    job_id = await chores.add_job("postpone", {"key": "k", "times": 3, "after": 0.05}, max_attempts=1)
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert (job.attempts, job.postponements) == (1, 3)
    assert Chores.calls["k"] == 4


async def test_postponements_count_as_attempts_after_the_free_ones(hub, chores, make_runner, monkeypatch):
    monkeypatch.setattr(queue, "MAX_FREE_POSTPONEMENTS", 2)
    job_id = await chores.add_job("postpone", {"key": "k", "times": 1000, "after": 0.01}, max_attempts=2)
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "failed")
    assert (job.attempts, job.postponements) == (2, 3)
    assert Chores.calls["k"] == 4
    assert job.last_error.startswith("postponed more than 2 times, now counted as attempts: RetryLater: not ready")


async def test_a_job_of_a_broken_instance_fails_with_a_clear_error(hub, chores, make_runner):
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 0}, max_attempts=2)
    async with hub.sessionmaker() as session:
        await session.execute(
            update(ConnectorInstance).where(ConnectorInstance.id == chores.instance.id).values(config={"bogus": 1})
        )
        await bump_config_version(session)
        await session.commit()
    await hub.registry.reload()
    assert ("chores", "home") in hub.registry.broken
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "failed")
    assert job.attempts == 2
    assert job.last_error.startswith(
        "JobUnavailable: instance chores/home is not available in this process: invalid configuration: bogus"
    )
    assert Chores.calls["k"] == 0


async def test_a_job_whose_process_died_is_run_by_another_runner_after_its_lease(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    job_id = await chores.add_job("append", {"path": str(log), "line": "once"})
    [_] = await queue.claim(hub.sessionmaker, "killed-process", 1, lease=0.5)
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert job.attempts == 2
    assert log.read_text() == "once\n"


async def test_a_dead_process_on_the_last_attempt_fails_the_job(hub, chores, make_runner):
    job_id = await chores.add_job("flaky", {"key": "k", "failures": 0}, max_attempts=1)
    await queue.claim(hub.sessionmaker, "killed-process", 1, lease=0.2)
    runner = make_runner()
    await runner.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "failed")
    assert job.last_error.startswith("the process running its last attempt stopped")
    assert Chores.calls["k"] == 0


async def test_the_lease_is_renewed_while_a_job_runs(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    job_id = await chores.add_job("slow", {"key": "k", "seconds": 2, "path": str(log)})
    # Renewed every third of the lease: a renewal may be 0.6 s late on a loaded machine.
    first, second = make_runner(lease=1), make_runner(lease=1)
    await first.start()
    await wait_for_state(hub.sessionmaker, job_id, "running")
    await second.start()  # it would take the job if the lease were not renewed
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert (job.attempts, Chores.calls["k"]) == (1, 1)
    assert log.read_text() == "k\n"


async def test_stop_lets_running_jobs_finish_within_the_grace(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    job_id = await chores.add_job("slow", {"key": "k", "seconds": 0.3, "path": str(log)})
    runner = make_runner()
    await runner.start()
    await wait_for_state(hub.sessionmaker, job_id, "running")
    await asyncio.wait_for(runner.stop(grace=10), timeout=10)
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts) == ("done", 1)
    assert log.read_text() == "k\n"


async def test_stop_releases_a_long_job_which_another_runner_completes(hub, chores, make_runner, tmp_path):
    log, started = tmp_path / "effects.log", tmp_path / "started"
    released_before = job_runs("queued", "released")
    job_id = await chores.add_job("append", {"path": str(log), "line": "once", "hold_once": str(started)})
    first = make_runner()
    await first.start()
    await eventually(lambda: asyncio.sleep(0, started.exists()), what="the job started")
    await asyncio.wait_for(first.stop(grace=0.1), timeout=10)
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts, job.locked_by, job.locked_until) == ("pending", 0, "", None)
    assert job_runs("queued", "released") == released_before + 1
    assert not log.exists()

    second = make_runner()
    await second.start()
    job = await wait_for_state(hub.sessionmaker, job_id, "done")
    assert job.attempts == 1
    assert log.read_text() == "once\n"


async def test_cancelling_a_running_job_stops_it(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    job_id = await chores.add_job("slow", {"key": "k", "seconds": 30, "path": str(log)})
    runner = make_runner(lease=0.3)
    await runner.start()
    await wait_for_state(hub.sessionmaker, job_id, "running")
    await queue.cancel_job(hub.sessionmaker, job_id)
    await eventually(lambda: asyncio.sleep(0, not runner.running), what="the runner stopped the job")
    job = await job_row(hub.sessionmaker, job_id)
    assert job.state == "cancelled"
    assert not log.exists()


async def test_a_runner_runs_at_most_its_concurrency(hub, chores, make_runner, tmp_path):
    log = tmp_path / "effects.log"
    ids = [await chores.add_job("slow", {"key": str(i), "seconds": 0.2, "path": str(log)}) for i in range(5)]
    runner = make_runner(concurrency=2)
    await runner.start()
    seen = 0

    async def all_done() -> bool:
        nonlocal seen
        seen = max(seen, len(runner.running))
        states = [(await job_row(hub.sessionmaker, job_id)).state for job_id in ids]
        return states == ["done"] * 5

    await eventually(all_done)
    assert seen == 2
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3", "4"]


async def test_the_jobs_gauge_counts_jobs_by_state(hub, chores, make_runner):
    await chores.add_job("flaky", {"key": "a", "failures": 0}, after=3600)
    await chores.add_job("flaky", {"key": "b", "failures": 0}, after=3600)
    runner = make_runner()
    await runner.start()
    await runner.refresh_counts()
    assert REGISTRY.get_sample_value("passerelle_jobs", {"state": "pending"}) == 2
    assert REGISTRY.get_sample_value("passerelle_jobs", {"state": "failed"}) == 0
    await runner.stop(0)
    assert REGISTRY.get_sample_value("passerelle_jobs", {"state": "pending"}) is None
