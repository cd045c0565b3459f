"""The hub's shared state, stored on the aiohttp application under ``HUB``."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from passerelle.cache import ResponseCache
from passerelle.citizens import Citizens
from passerelle.connectors import Connector
from passerelle.instances import InstanceRegistry
from passerelle.settings import Settings

logger = structlog.get_logger("passerelle.services")


class Service(Protocol):
    """Background work owned by the application's lifecycle (job runner, availability
    checks, resource-log writer…): started after the instances are loaded, stopped in
    reverse order when the hub stops, with ``grace`` seconds to finish what it does."""

    name: str

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


class EveryInterval(ABC):
    """A service calling ``run_once()`` every ``interval`` seconds until stopped: a
    failed round is logged and the next one comes as planned (the database may be
    away for a while)."""

    name: str
    interval: float
    _task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run_once(self) -> object:
        """One round of the service's work."""

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("background round failed", service=self.name)
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass
class Hub:
    """Everything a request handler may need."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: InstanceRegistry
    owns_engine: bool = True
    services: list[Service] = field(default_factory=list)

    @property
    def types(self) -> dict[str, type[Connector]]:
        return self.registry.types

    @cached_property
    def cache(self) -> ResponseCache:
        """The response cache of endpoints declaring a ``cache_duration``."""
        return ResponseCache.from_settings(self.settings)

    @cached_property
    def citizens(self) -> Citizens:
        """The stores of data about citizens (rights of access and erasure)."""
        citizens = Citizens(self.sessionmaker)
        # Cached answers of calls made with a NameID hold what the application said about that citizen.
        self.cache.register_citizen_store(citizens)
        return citizens

    def base_url(self, request: web.Request) -> str:
        return self.settings.base_url.rstrip("/") or f"{request.scheme}://{request.host}"


HUB = web.AppKey("hub", Hub)


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB]
