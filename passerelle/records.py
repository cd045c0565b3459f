"""Durable records of a connector instance: small JSON values kept between restarts.

A connector that must remember something across restarts and hub processes (an
answer whose id a form will look up later, a token, the stamp of the last import)
uses ``self.records`` instead of a table of its own, so that a plugin needs no
migration::

    await self.records.put("address", ban_id, feature, ttl=30 * 86400)
    feature = await self.records.get("address", ban_id)     # None when unknown or expired

A record is ``(instance, kind, key) -> JSON object``; writing the same key again
replaces the value. ``ttl`` (seconds) makes it expire: an expired record is never
returned, and the hourly retention purge (:mod:`passerelle.retention`) deletes it.
Records go with their instance when it is deleted.

Records are not meant for personal data: they are not part of a citizen's access and
erasure (:mod:`passerelle.citizens`); keep citizens' data in links or in the
business application.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.settings import Settings
from passerelle.storage.models import Record

__all__ = ["Records", "purge_expired"]

KIND_MAX_LENGTH = 64
KEY_MAX_LENGTH = 255
BATCH = 500  # rows per INSERT: SQLite caps the bound parameters of a statement


def _check(kind: str, key: str | None = None) -> None:
    if not kind or len(kind) > KIND_MAX_LENGTH:
        raise ValueError(f"a record kind is 1 to {KIND_MAX_LENGTH} characters, not {kind!r}")
    if key is not None and (not key or len(key) > KEY_MAX_LENGTH):
        raise ValueError(f"a record key is 1 to {KEY_MAX_LENGTH} characters, not {key!r}")


def _expiry(ttl: float | None) -> datetime | None:
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError("a record's ttl is a positive number of seconds")
    return datetime.now(UTC) + timedelta(seconds=ttl)


def _live(now: datetime) -> Any:
    return or_(Record.expires.is_(None), Record.expires > now)


class Records:
    """The records of one instance (``Connector.records``)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], instance_id: int) -> None:
        self.sessionmaker = sessionmaker
        self.instance_id = instance_id

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The value stored under ``key``, or None when there is none or it expired."""
        _check(kind, key)
        statement = select(Record.value).where(
            Record.instance_id == self.instance_id,
            Record.kind == kind,
            Record.key == key,
            _live(datetime.now(UTC)),
        )
        async with self.sessionmaker() as session:
            return (await session.execute(statement)).scalar_one_or_none()

    async def put(self, kind: str, key: str, value: Mapping[str, Any], *, ttl: float | None = None) -> None:
        """Store ``value`` (a JSON object) under ``key``, replacing what was there."""
        await self.put_many(kind, {key: value}, ttl=ttl)

    async def put_many(self, kind: str, values: Mapping[str, Mapping[str, Any]], *, ttl: float | None = None) -> None:
        """Store several values at once (one transaction)."""
        _check(kind)
        for key in values:
            _check(kind, key)
        if not values:
            return
        now = datetime.now(UTC)
        expires = _expiry(ttl)
        rows = [
            {"instance_id": self.instance_id, "kind": kind, "key": key, "value": dict(value), "updated": now}
            | {"expires": expires}
            for key, value in values.items()
        ]
        async with self.sessionmaker() as session, session.begin():
            insert = _dialect_insert(session)
            for start in range(0, len(rows), BATCH):
                statement = insert(Record).values(rows[start : start + BATCH])
                statement = statement.on_conflict_do_update(
                    index_elements=[Record.instance_id, Record.kind, Record.key],
                    set_={
                        "value": statement.excluded.value,
                        "updated": statement.excluded.updated,
                        "expires": statement.excluded.expires,
                    },
                )
                await session.execute(statement)

    async def delete(self, kind: str, key: str | None = None) -> int:
        """Delete one record, or every record of ``kind`` when ``key`` is None; the number deleted."""
        _check(kind, key)
        statement = delete(Record).where(Record.instance_id == self.instance_id, Record.kind == kind)
        if key is not None:
            statement = statement.where(Record.key == key)
        async with self.sessionmaker() as session, session.begin():
            return (await session.execute(statement)).rowcount or 0

    async def count(self, kind: str) -> int:
        """How many live records of ``kind`` the instance holds."""
        _check(kind)
        statement = select(func.count(Record.id)).where(
            and_(Record.instance_id == self.instance_id, Record.kind == kind, _live(datetime.now(UTC)))
        )
        async with self.sessionmaker() as session:
            return int((await session.execute(statement)).scalar_one())


def _dialect_insert(session: AsyncSession) -> Any:
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


async def purge_expired(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Delete the expired records of every instance (a retention purger); the number deleted."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(delete(Record).where(Record.expires <= datetime.now(UTC)))
        return result.rowcount or 0
