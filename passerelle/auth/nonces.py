"""Signature nonces, each accepted once across every hub process.

A signed request carries a nonce; a second request with the same nonce is a
replay, even when it reaches another process behind the load balancer. The store
is shared by every process:

- :class:`DatabaseNonceStore` (default): one row per nonce in ``signature_nonce``,
  whose primary key makes the insert fail for a nonce already there. One statement
  decides, atomically, on SQLite and PostgreSQL. Rows past their expiry are purged
  at most once a minute per process, by one indexed ``DELETE``.
- :class:`RedisNonceStore` (``PASSERELLE_REDIS_URL``): ``SET <key> 1 NX EX <seconds>``;
  Redis forgets the nonce by itself.

A nonce needs keeping only while a request carrying it could still be accepted, that
is until its timestamp leaves the window; the caller passes that instant as
``expires`` (plus a margin for clocks that differ between processes).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from datetime import UTC, datetime
from typing import Protocol

import structlog
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.storage.models import Nonce

logger = structlog.get_logger("passerelle.auth")

MAX_LENGTH = 128
PLAIN_NONCE = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
REDIS_PREFIX = "passerelle:nonce:"
PURGE_INTERVAL = 60.0  # seconds between two purges of expired rows, per process


def normalise(nonce: str) -> str:
    """The stored form of a nonce: itself when short and plain (hex, as Publik sends),
    else ``sha256:<hex>`` of it. At most 128 characters; two different nonces never
    share a stored form (a plain one has no ':')."""
    if PLAIN_NONCE.match(nonce):
        return nonce
    return "sha256:" + hashlib.sha256(nonce.encode("utf-8", "surrogateescape")).hexdigest()


class NonceStore(Protocol):
    async def use(self, nonce: str, expires: datetime) -> bool:
        """Record the nonce until ``expires``; False when it was already used."""
        ...

    async def close(self) -> None: ...


class DatabaseNonceStore:
    """Nonces in the ``signature_nonce`` table of the hub's database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._next_purge = 0.0

    async def use(self, nonce: str, expires: datetime) -> bool:
        value = normalise(nonce)
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_INTERVAL
                await session.execute(delete(Nonce).where(Nonce.expires < now))
            inserted = await self._insert(session, value, expires, now)
        return inserted

    async def _insert(self, session: AsyncSession, value: str, expires: datetime, now: datetime) -> bool:
        dialect = session.bind.dialect.name
        if dialect in ("postgresql", "sqlite"):
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            # A row left over from an expired window (not purged yet) is taken over;
            # a live one is a replay: no row comes back.
            statement = dialect_insert(Nonce).values(value=value, expires=expires)
            statement = statement.on_conflict_do_update(
                index_elements=[Nonce.value],
                set_={"expires": statement.excluded.expires},
                where=Nonce.expires < now,
            ).returning(Nonce.value)
            return (await session.execute(statement)).first() is not None
        try:
            async with session.begin_nested():
                await session.execute(insert(Nonce).values(value=value, expires=expires))
        except IntegrityError:
            return False
        return True

    async def close(self) -> None:
        pass


class RedisNonceStore:
    """Nonces in Redis, each key expiring with its window."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url)

    async def use(self, nonce: str, expires: datetime) -> bool:
        seconds = max(1, math.ceil((expires - datetime.now(UTC)).total_seconds()))
        return bool(await self.client.set(REDIS_PREFIX + normalise(nonce), 1, nx=True, ex=seconds))

    async def close(self) -> None:
        await self.client.aclose()


def make_nonce_store(redis_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> NonceStore:
    if redis_url:
        return RedisNonceStore(redis_url)
    return DatabaseNonceStore(sessionmaker)
