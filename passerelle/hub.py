"""The hub's shared state, stored on the aiohttp application under ``HUB``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from passerelle.citizens import Citizens
from passerelle.connectors import Connector
from passerelle.instances import InstanceRegistry
from passerelle.settings import Settings


@dataclass
class Hub:
    """Everything a request handler may need."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: InstanceRegistry
    owns_engine: bool = True

    @property
    def types(self) -> dict[str, type[Connector]]:
        return self.registry.types

    @cached_property
    def citizens(self) -> Citizens:
        """The stores of data about citizens (rights of access and erasure)."""
        return Citizens(self.sessionmaker)

    def base_url(self, request: web.Request) -> str:
        return self.settings.base_url.rstrip("/") or f"{request.scheme}://{request.host}"


HUB = web.AppKey("hub", Hub)


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB]
