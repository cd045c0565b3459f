"""The bounded thread pool (passerelle.threads): results, bounds, gauges, context, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import generate_latest

from passerelle import metrics, run_sync, threads
from passerelle.requestid import CURRENT_REQUEST_ID
from passerelle.settings import Settings
from passerelle.threads import ThreadPool, ThreadPoolService


def gauges() -> dict[str, float]:
    text = generate_latest(metrics.REGISTRY).decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("passerelle_thread_pool_"):
            name, value = line.split(" ")
            found[name] = float(value)
    return found


async def test_runs_in_another_thread_and_gives_the_result():
    loop_thread = threading.get_ident()

    def work(a, b, *, c):
        return threading.get_ident(), a + b + c

    ident, total = await run_sync(work, 1, 2, c=3)
    assert total == 6
    assert ident != loop_thread


async def test_exceptions_reach_the_caller():
    def broken():
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        await run_sync(broken)


async def test_the_context_goes_with_the_call():
    token = CURRENT_REQUEST_ID.set("rid-123")
    try:
        assert await run_sync(CURRENT_REQUEST_ID.get) == "rid-123"
    finally:
        CURRENT_REQUEST_ID.reset(token)


async def test_bounded_with_busy_and_queue_gauges():
    pool = ThreadPool(2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def block():
        started.release()
        release.wait(5)
        return "done"

    calls = [asyncio.ensure_future(pool.run(block)) for _ in range(5)]
    for _ in range(2):
        await asyncio.to_thread(started.acquire, True, 5)
    await asyncio.sleep(0.05)
    assert (pool.busy, pool.queued) == (2, 3)
    # The event loop is free meanwhile.
    assert await asyncio.wait_for(asyncio.sleep(0, "loop"), 1) == "loop"
    release.set()
    assert await asyncio.gather(*calls) == ["done"] * 5
    assert (pool.busy, pool.queued) == (0, 0)
    await pool.shutdown(1)


async def test_a_cancelled_queued_call_leaves_the_queue():
    pool = ThreadPool(1)
    release = threading.Event()
    running = asyncio.ensure_future(pool.run(release.wait, 5))
    waiting = asyncio.ensure_future(pool.run(lambda: "never"))
    await asyncio.sleep(0.05)
    assert pool.queued == 1
    waiting.cancel()
    await asyncio.sleep(0.05)
    assert pool.queued == 0
    release.set()
    assert await running is True
    await pool.shutdown(1)


async def test_the_service_sizes_the_pool_and_the_gauges_show_it(hub_settings):
    service = ThreadPoolService(hub_settings.model_copy(update={"thread_pool_size": 3}))
    await service.start()
    try:
        pool = threads.current_pool()
        assert pool.size == 3
        release = threading.Event()
        call = asyncio.ensure_future(run_sync(release.wait, 5))
        await asyncio.sleep(0.05)
        seen = gauges()
        assert seen["passerelle_thread_pool_busy"] == 1
        assert seen["passerelle_thread_pool_queue"] == 0
        assert seen["passerelle_thread_pool_size"] == 3
        release.set()
        await call
    finally:
        await service.stop(1)
    assert pool.closed


async def test_shutdown_waits_for_running_calls_up_to_the_grace():
    pool = ThreadPool(1)
    finished = []

    def slow(seconds):
        time.sleep(seconds)
        finished.append(seconds)
        return seconds

    call = asyncio.ensure_future(pool.run(slow, 0.2))
    await asyncio.sleep(0.05)
    await pool.shutdown(2)
    assert finished == [0.2]
    assert await call == 0.2
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.run(slow, 0)


async def test_shutdown_gives_up_after_the_grace(capsys):
    pool = ThreadPool(1)
    release = threading.Event()
    call = asyncio.ensure_future(pool.run(release.wait, 5))
    queued = asyncio.ensure_future(pool.run(lambda: "dropped"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await pool.shutdown(0.2)
    assert time.monotonic() - started < 1
    assert "thread pool shut down with calls still running" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="shut down before this call could run"):
        await queued
    release.set()
    assert await call is True


async def test_applications_share_the_pool_and_the_last_one_shuts_it():
    first = ThreadPoolService(Settings(thread_pool_size=2))
    second = ThreadPoolService(Settings(thread_pool_size=5))
    await first.start()
    await second.start()
    pool = threads.current_pool()
    assert pool.size == 2
    await first.stop(1)
    assert not pool.closed
    assert await run_sync(lambda: 42) == 42
    await second.stop(1)
    assert pool.closed
    # Outside an application, a pool of the default size appears on demand.
    assert await run_sync(lambda: 7) == 7
    assert threads.current_pool().size == Settings().thread_pool_size


def test_a_pool_needs_a_thread():
    with pytest.raises(ValueError):
        ThreadPool(0)
