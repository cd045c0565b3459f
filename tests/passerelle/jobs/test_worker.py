"""`passerelle worker` processes: killed in the middle of a job, stopped by SIGTERM, and
two of them sharing a PostgreSQL queue."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from passerelle.storage.models import Job
from passerelle.testing import SECRET_KEY
from tests.passerelle.jobs.support import eventually, job_row, wait_for_state

ROOT = Path(__file__).resolve().parents[3]

# The worker's entry point with the tests' connector types, a fast poll and the lease given
# as argument (below the setting's minimum of 5 s: the drills last seconds, not minutes).
WORKER = """
import asyncio
import sys
from passerelle.jobs import runner
from passerelle.jobs.worker import run_worker
from passerelle.logs import configure_logging
from passerelle.settings import Settings
from tests.passerelle.jobs.chores import Chores

runner.POLL_INTERVAL = 0.05
settings = Settings().model_copy(update={"job_lease": float(sys.argv[1])})
configure_logging(settings.log_level, settings.log_format)
asyncio.run(run_worker(settings, {"chores": Chores}))
"""


def worker_env(tmp_path: Path, database_url: str = "", **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PASSERELLE_DATA_DIR=str(tmp_path / "data"),
        PASSERELLE_SECRET_KEY=SECRET_KEY,
        PASSERELLE_LOG_FORMAT="console",
        PASSERELLE_RUN_PERIODIC_JOBS="false",
        PASSERELLE_SHUTDOWN_GRACE="2",
    )
    if database_url:
        env["PASSERELLE_DATABASE_URL"] = database_url
    env.update({f"PASSERELLE_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture
def spawn_worker(hub_settings, tmp_path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``spawn_worker(name, lease=1, **settings)``: a worker process on the test's database;
    its output goes to ``tmp_path/<name>.out``. Killed at the end if still running."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, lease: float = 1, **settings: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.out", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(lease)],
                cwd=ROOT,
                env=worker_env(tmp_path, hub_settings.database_url, **settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


async def exit_status(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    await eventually(lambda: asyncio.sleep(0, process.poll() is not None), timeout, "the process exited")
    return process.returncode


async def started(tmp_path: Path, name: str) -> None:
    output = tmp_path / f"{name}.out"
    await eventually(
        lambda: asyncio.sleep(0, output.exists() and b"worker started" in output.read_bytes()),
        timeout=30,
        what=f"worker {name} started",
    )


async def test_a_worker_killed_during_a_job_leaves_it_to_be_completed_exactly_once(hub, chores, spawn_worker, tmp_path):
    log, marker = tmp_path / "effects.log", tmp_path / "started"
    job_id = await chores.add_job("append", {"path": str(log), "line": "once", "hold_once": str(marker)})

    first = spawn_worker("first")
    await eventually(lambda: asyncio.sleep(0, marker.exists()), timeout=30, what="the job started")
    first.send_signal(signal.SIGKILL)
    assert await exit_status(first) == -signal.SIGKILL
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts) == ("running", 1)
    assert job.locked_by.startswith(f"{socket.gethostname()}:{first.pid}/")

    second = spawn_worker("second")
    job = await wait_for_state(hub.sessionmaker, job_id, "done", timeout=30)
    assert job.attempts == 2
    assert log.read_text() == "once\n"

    second.send_signal(signal.SIGTERM)
    assert await exit_status(second) == 0
    assert b"worker stopped" in (tmp_path / "second.out").read_bytes()


async def test_sigterm_releases_a_running_job_for_the_next_worker(
    hub, hub_database_url, chores, spawn_worker, tmp_path
):
    if not hub_database_url.startswith("sqlite"):
        pytest.skip("signals are handled alike on every database; releasing is tested on each in test_runner")
    log, marker = tmp_path / "effects.log", tmp_path / "started"
    job_id = await chores.add_job("append", {"path": str(log), "line": "once", "hold_once": str(marker)})
    first = spawn_worker("first", shutdown_grace="0.2")
    await eventually(lambda: asyncio.sleep(0, marker.exists()), timeout=30, what="the job started")
    first.send_signal(signal.SIGTERM)
    assert await exit_status(first) == 0
    job = await job_row(hub.sessionmaker, job_id)
    assert (job.state, job.attempts, job.locked_by) == ("pending", 0, "")

    spawn_worker("second")
    job = await wait_for_state(hub.sessionmaker, job_id, "done", timeout=30)
    assert job.attempts == 1
    assert log.read_text() == "once\n"


async def test_two_workers_on_postgresql_run_each_of_a_thousand_jobs_exactly_once(
    hub, hub_database_url, chores, spawn_worker, tmp_path
):
    if not hub_database_url.startswith("postgresql"):
        pytest.skip("several runners share a queue on PostgreSQL; SQLite expects one")
    log = tmp_path / "effects.log"
    # A lease far longer than a job: a machine so loaded that a worker misses renewing it
    # would let the other run its jobs again (at least once), which is not what is tested here.
    workers = [spawn_worker(name, lease=30, job_concurrency="8") for name in ("a", "b")]
    await started(tmp_path, "a")
    await started(tmp_path, "b")
    # Queued in one statement (add_job is tested elsewhere): the workers find 1,000 jobs at once.
    rows = [
        {
            "instance_id": chores.instance.id,
            "method": "append",
            "params": {"path": str(log), "line": str(n), "with_pid": True},
        }
        for n in range(1000)
    ]
    async with hub.sessionmaker() as session:
        await session.execute(insert(Job), rows)
        await session.commit()

    async def all_done() -> bool:
        async with hub.sessionmaker() as session:
            done = await session.scalar(select(func.count()).select_from(Job).where(Job.state == "done"))
        return done == 1000

    await eventually(all_done, timeout=120, what="1,000 jobs done")
    lines = [line.split() for line in log.read_text().splitlines()]
    assert Counter(number for number, _ in lines) == Counter(str(number) for number in range(1000))
    async with hub.sessionmaker() as session:
        attempts = set((await session.scalars(select(Job.attempts))).all())
    assert attempts == {1}
    # Both took part, or this test proved nothing about sharing the queue.
    assert {int(pid) for _, pid in lines} == {worker.pid for worker in workers}
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [await exit_status(worker) for worker in workers] == [0, 0]


async def test_the_worker_command_runs_until_sigterm(tmp_path):
    output = tmp_path / "cli.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "passerelle.cli", "worker"],
            cwd=tmp_path,
            env=worker_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await started(tmp_path, "cli")
        process.send_signal(signal.SIGTERM)
        assert await exit_status(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert "job runner started" in text and "worker stopped" in text
