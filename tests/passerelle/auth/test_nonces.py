"""Signature nonces: used once, across every process, on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from passerelle.auth import nonces
from passerelle.auth.nonces import DatabaseNonceStore, RedisNonceStore, make_nonce_store, normalise
from passerelle.storage import make_sessionmaker
from passerelle.storage.models import Nonce


def later(seconds: float = 60) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_normalise_keeps_plain_nonces_and_hashes_the_others():
    assert normalise("0123456789abcdef") == "0123456789abcdef"
    assert normalise("a" * 128) == "a" * 128
    long = normalise("a" * 129)
    assert long.startswith("sha256:") and len(long) == 71
    assert normalise("a" * 129) != normalise("a" * 130)  # no truncation: no collision
    assert normalise("é/..") == normalise("é/..") != normalise("e/..")
    assert all(len(normalise(n)) <= 128 for n in ("x" * 1000, "☃", "a b", ""))
    assert ":" not in normalise("0123456789abcdef") and ":" in normalise("a:b")


@pytest.fixture
def store(hub_engine):
    return DatabaseNonceStore(make_sessionmaker(hub_engine))


async def test_database_nonce_is_used_once(store):
    nonce = uuid.uuid4().hex
    assert await store.use(nonce, later()) is True
    assert await store.use(nonce, later()) is False
    assert await store.use(uuid.uuid4().hex, later()) is True


async def test_database_long_and_odd_nonces(store, hub_engine):
    for nonce in ("x" * 500, "é è", "a/b?c&d"):
        assert await store.use(nonce, later()) is True
        assert await store.use(nonce, later()) is False
    async with make_sessionmaker(hub_engine)() as session:
        values = (await session.scalars(select(Nonce.value))).all()
    assert all(len(v) <= 128 for v in values)


async def test_database_concurrent_uses_accept_exactly_one(store):
    nonce = uuid.uuid4().hex
    results = await asyncio.gather(*(store.use(nonce, later()) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_database_two_stores_share_the_table(hub_engine, hub_settings):
    # Two processes: each has its own engine on the same database.
    from passerelle.storage import make_engine

    other_engine = make_engine(hub_settings.resolved_database_url)
    try:
        first = DatabaseNonceStore(make_sessionmaker(hub_engine))
        second = DatabaseNonceStore(make_sessionmaker(other_engine))
        nonce = uuid.uuid4().hex
        assert await first.use(nonce, later()) is True
        assert await second.use(nonce, later()) is False
    finally:
        await other_engine.dispose()


async def test_database_expired_rows_are_purged_and_taken_over(store, hub_engine, monkeypatch):
    sessionmaker = make_sessionmaker(hub_engine)
    assert await store.use("old-one", later(-10)) is True
    assert await store.use("old-two", later(-10)) is True
    # An expired row not purged yet does not make a later use a replay.
    assert await store.use("old-one", later()) is True
    assert await store.use("old-one", later()) is False
    # The purge runs at most once per interval, then removes every expired row.
    monkeypatch.setattr(store, "_next_purge", 0.0)
    assert await store.use("fresh", later()) is True
    async with sessionmaker() as session:
        assert set((await session.scalars(select(Nonce.value))).all()) == {"old-one", "fresh"}
    assert await store.use("another", later(-10)) is True
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Nonce))
    assert count == 3  # not purged again within the interval
    assert store._next_purge > 0 and nonces.PURGE_INTERVAL == 60.0


async def test_redis_nonce_is_used_once(redis_url):
    store = RedisNonceStore(redis_url)
    try:
        nonce = uuid.uuid4().hex
        assert await store.use(nonce, later(5)) is True
        assert await store.use(nonce, later(5)) is False
        assert await store.use(uuid.uuid4().hex, later(5)) is True
        results = await asyncio.gather(*(store.use("c-" + nonce, later(5)) for _ in range(8)))
        assert sorted(results) == [False] * 7 + [True]
        ttl = await store.client.ttl(nonces.REDIS_PREFIX + nonce)
        assert 1 <= ttl <= 5
        # An already past expiry still keeps the nonce a second.
        assert await store.use("past-" + nonce, later(-10)) is True
        assert 0 < await store.client.ttl(nonces.REDIS_PREFIX + "past-" + nonce) <= 1
        long = "y" * 300 + nonce
        assert await store.use(long, later(5)) is True
        assert await store.client.exists(nonces.REDIS_PREFIX + normalise(long))
    finally:
        await store.close()


async def test_redis_two_clients_share_nonces(redis_url):
    first, second = RedisNonceStore(redis_url), RedisNonceStore(redis_url)
    try:
        nonce = uuid.uuid4().hex
        assert await first.use(nonce, later(5)) is True
        assert await second.use(nonce, later(5)) is False
    finally:
        await first.close()
        await second.close()


async def test_the_store_follows_the_settings(hub_engine):
    sessionmaker = make_sessionmaker(hub_engine)
    assert isinstance(make_nonce_store("", sessionmaker), DatabaseNonceStore)
    redis_store = make_nonce_store("redis://127.0.0.1:1/0", sessionmaker)
    assert isinstance(redis_store, RedisNonceStore)
    await redis_store.close()
