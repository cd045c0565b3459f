"""A citizen's rights of access and erasure: everything the hub holds about one NameID.

Data about citizens lives in several stores, each keyed by the NameID. Each store
registers here once, with two async callables taking the NameID:

- ``find``: what the store holds about it (JSON-able), for the right of access;
- ``erase``: remove it, and return what was removed (a count, JSON-able).

The admin API (``/manage/api/citizens/<NameID>/``) and the CLI (``passerelle
citizen show|erase``) only go through :class:`Citizens`, so a store added later
(the response cache, resource logs…) is erased as soon as it registers: add it to
:meth:`Citizens.__init__` when it outlives the process (database, Redis), so that
the CLI erases it too; a store that lives in one process only registers on
``hub.citizens`` when the app starts.

Erasure runs every eraser, in registration order (links first), even when one
fails, then writes one audit row (``action="erase"``) that does **not** name the
NameID: its ``name_id`` column is empty and its ``detail`` holds only the count
each store removed (and the stores that failed). Nothing in it leads back to the
citizen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle import links, resourcelogs
from passerelle.jobs import queue as jobqueue

logger = structlog.get_logger("passerelle.citizens")

Finder = Callable[[str], Awaitable[Any]]
Eraser = Callable[[str], Awaitable[Any]]

__all__ = ["Citizens", "Eraser", "Erasure", "Finder"]


@dataclass
class Erasure:
    """What an erasure removed, per store, and the stores that failed."""

    removed: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "failed": self.failed}


class Citizens:
    """The stores of data about citizens, keyed by NameID."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.finders: list[tuple[str, Finder]] = []
        self.erasers: list[tuple[str, Eraser]] = []
        self.register(
            "links",
            find=partial(self._find_links, sessionmaker),
            erase=partial(links.erase_citizen_links, sessionmaker),
        )
        self.register(
            "link_audit",
            find=partial(self._find_audit, sessionmaker),
            erase=partial(links.erase_citizen_audit, sessionmaker),
        )
        self.register(
            "resource logs",
            find=partial(resourcelogs.count_citizen, sessionmaker),
            erase=partial(resourcelogs.erase_citizen, sessionmaker),
        )
        self.register(
            "jobs",
            find=partial(jobqueue.citizen_jobs, sessionmaker),
            erase=partial(jobqueue.erase_citizen_jobs, sessionmaker),
        )

    def register(self, name: str, *, erase: Eraser, find: Finder | None = None) -> None:
        """Add a store; ``find`` may be left out for stores that cannot list (a cache)."""
        if any(existing == name for existing, _ in self.erasers):
            raise ValueError(f"a store named {name!r} is already registered")
        self.erasers.append((name, erase))
        if find is not None:
            self.finders.append((name, find))

    @staticmethod
    async def _find_links(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> list[dict[str, Any]]:
        return [record.as_dict() for record in await links.citizen_links(sessionmaker, name_id)]

    @staticmethod
    async def _find_audit(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> list[dict[str, Any]]:
        return [entry.as_dict() for entry in await links.citizen_audit(sessionmaker, name_id)]

    async def show(self, name_id: str | None) -> dict[str, Any]:
        """Everything held about this NameID: ``{"name_id": …, "<store>": …}``."""
        name_id = links.require_name_id(name_id)
        found: dict[str, Any] = {"name_id": name_id}
        for name, find in self.finders:
            found[name] = await find(name_id)
        return found

    async def erase(self, name_id: str | None, *, actor: str) -> Erasure:
        """Erase everything about this NameID from every store, and audit it without the NameID."""
        name_id = links.require_name_id(name_id)
        erasure = Erasure()
        for name, erase in self.erasers:
            try:
                erasure.removed[name] = await erase(name_id)
            except Exception:
                # Keep going: one store failing must not leave the others untouched.
                logger.exception("a store failed to erase a citizen's data", store=name)
                erasure.failed.append(name)
        await links.record_erasure(self.sessionmaker, actor=actor, detail=erasure.as_dict())
        return erasure
