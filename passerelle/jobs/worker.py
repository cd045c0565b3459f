"""``passerelle worker``: runs queued jobs, and periodic jobs, without serving HTTP.

The worker is ``serve`` without the web server: the same hub, instances loaded and
followed as the configuration changes (:func:`passerelle.app.running`), the same
services, with ``RUN_JOBS`` forced on. SIGTERM and SIGINT stop it gracefully: running
jobs get ``SHUTDOWN_GRACE`` seconds, then are released to be run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from passerelle.app import build_hub, running
from passerelle.connectors import Connector
from passerelle.settings import Settings

logger = structlog.get_logger("passerelle.jobs")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_worker(
    settings: Settings,
    types: dict[str, type[Connector]] | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM, SIGINT or ``stop`` is set. ``types``: the connector types
    (default: the installed ones, as ``serve``)."""
    settings = settings.model_copy(update={"run_jobs": True})
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    hub = build_hub(settings, types=types)
    try:
        async with running(hub):
            logger.info(
                "worker started",
                instances=len(hub.registry.connectors),
                periodic_jobs=settings.run_periodic_jobs,
                concurrency=settings.job_concurrency,
            )
            await stop.wait()
            logger.info("worker stopping", grace=settings.shutdown_grace)
    finally:
        for signum in STOP_SIGNALS:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
        await hub.engine.dispose()
    logger.info("worker stopped")
