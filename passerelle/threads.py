"""The bounded thread pool of the process, for synchronous libraries (zeep, parsers…).

``await run_sync(func, *args, **kwargs)`` runs ``func`` in one of
``settings.thread_pool_size`` threads and gives its result (or raises its exception)
without blocking the event loop. Calls beyond the pool's size wait in a queue; the
``passerelle_thread_pool_busy`` and ``passerelle_thread_pool_queue`` gauges show both.
The context (request id, log context) goes with the call into the thread.

The pool is created and shut down with the application (:class:`ThreadPoolService`,
first of :func:`passerelle.app.build_services`); outside an application (a script, a
test) the first ``run_sync`` creates one of the default size. Shutting down waits up to
the grace for the calls in flight, queued ones included, then drops those still queued;
a thread cannot be stopped, so one still running is only reported.

It is not asyncio's default executor on purpose: DNS resolution and ``asyncio.to_thread``
stay there, so that a pool full of SOAP calls waiting for their HTTP answers never waits
for itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog
from prometheus_client.core import Metric

from passerelle import metrics
from passerelle.settings import Settings

logger = structlog.get_logger("passerelle.threads")

__all__ = ["ThreadPool", "ThreadPoolService", "current_pool", "run_sync"]

T = TypeVar("T")

DEFAULT_SIZE: int = Settings.model_fields["thread_pool_size"].default


class ThreadPool:
    """A ``ThreadPoolExecutor`` that counts its busy threads and its queue."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix="passerelle-sync")
        self._lock = threading.Lock()
        self.busy = 0
        self.queued = 0
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self.closed = False

    async def run(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if self.closed:
            raise RuntimeError("the thread pool is shut down")
        context = contextvars.copy_context()
        call = functools.partial(context.run, self._counted, functools.partial(func, *args, **kwargs))
        with self._lock:
            self.queued += 1
        try:
            future = self.executor.submit(call)
        except RuntimeError:
            with self._lock:
                self.queued -= 1
            raise
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.closed and future.cancelled() and (task is None or not task.cancelling()):
                raise RuntimeError("the thread pool was shut down before this call could run") from None
            raise

    def _counted(self, call: Callable[[], T]) -> T:
        with self._lock:
            self.queued -= 1
            self.busy += 1
        try:
            return call()
        finally:
            with self._lock:
                self.busy -= 1

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
            if future.cancelled():  # dropped from the queue: it never started
                self.queued -= 1

    async def shutdown(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the calls in flight, then drop the queue."""
        self.closed = True
        with self._lock:
            pending = list(self._pending)
        if pending and grace > 0:
            # Waited for in asyncio's default executor: this loop keeps serving the calls
            # (SOAP transports need it to send their HTTP requests).
            await asyncio.to_thread(concurrent.futures.wait, pending, timeout=grace)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.busy or self.queued:
            logger.warning(
                "thread pool shut down with calls still running",
                running=self.busy,
                dropped=self.queued,
                grace=grace,
            )


_pool: ThreadPool | None = None
_users = 0
_pool_lock = threading.Lock()


def current_pool() -> ThreadPool:
    """The process's pool (created with the default size if no application made one)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = ThreadPool(DEFAULT_SIZE)
        return _pool


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a synchronous function in the bounded thread pool and await its result."""
    return await current_pool().run(func, *args, **kwargs)


class ThreadPoolService:
    """Creates the pool at ``settings.thread_pool_size`` when the application starts and
    shuts it down when it stops (several applications in one process share it: the
    first one sizes it, the last one to stop shuts it down)."""

    name = "thread-pool"

    def __init__(self, settings: Settings) -> None:
        self.size = settings.thread_pool_size
        self._started = False

    async def start(self) -> None:
        global _pool, _users
        with _pool_lock:
            idle = _pool is not None and _users == 0 and not _pool.busy and not _pool.queued
            if _pool is None or _pool.closed or (idle and _pool.size != self.size):
                previous, _pool = _pool, ThreadPool(self.size)
                if previous is not None and not previous.closed:
                    previous.closed = True
                    previous.executor.shutdown(wait=False)
            elif _pool.size != self.size:
                logger.warning("the thread pool is shared and keeps its size", size=_pool.size, asked=self.size)
            _users += 1
            self._started = True

    async def stop(self, grace: float) -> None:
        global _pool, _users
        if not self._started:
            return
        self._started = False
        with _pool_lock:
            _users -= 1
            if _users > 0 or _pool is None:
                return
            pool, _pool = _pool, None
        await pool.shutdown(grace)


def _pool_states() -> Iterable[Metric]:
    pool = _pool
    busy = metrics.gauge("passerelle_thread_pool_busy", "Threads of the pool running a synchronous call.", [])
    queue = metrics.gauge("passerelle_thread_pool_queue", "Synchronous calls waiting for a thread of the pool.", [])
    size = metrics.gauge("passerelle_thread_pool_size", "Threads of the pool (PASSERELLE_THREAD_POOL_SIZE).", [])
    busy.add_metric([], pool.busy if pool else 0)
    queue.add_metric([], pool.queued if pool else 0)
    size.add_metric([], pool.size if pool else 0)
    yield from (busy, queue, size)


metrics.register_state_collector("thread_pool", _pool_states)
