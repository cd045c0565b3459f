"""Durable connector records (passerelle.records), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from passerelle.hub import HUB
from passerelle.records import purge_expired
from passerelle.storage.models import Record
from passerelle.testing import ADMIN_TOKEN


@pytest.fixture
def sessionmaker(hub_app):
    return hub_app[HUB].sessionmaker


async def test_put_get_replace_delete(make_instance):
    records = (await make_instance("family-sample", "ville")).records

    assert await records.get("address", "75118_2974_00018") is None
    await records.put("address", "75118_2974_00018", {"label": "18 Rue Duhesme 75018 Paris", "score": 0.98})
    assert await records.get("address", "75118_2974_00018") == {"label": "18 Rue Duhesme 75018 Paris", "score": 0.98}
    # Same key again: replaced, not duplicated.
    await records.put("address", "75118_2974_00018", {"label": "replaced"})
    assert await records.get("address", "75118_2974_00018") == {"label": "replaced"}
    assert await records.count("address") == 1
    # Kinds are separate namespaces.
    assert await records.get("street", "75118_2974_00018") is None

    assert await records.delete("address", "75118_2974_00018") == 1
    assert await records.get("address", "75118_2974_00018") is None
    assert await records.delete("address", "75118_2974_00018") == 0


async def test_put_many_upserts_in_batches(make_instance):
    records = (await make_instance("family-sample", "ville")).records
    await records.put("address", "a-1", {"n": 0})
    # More rows than one INSERT holds, one of them already stored.
    await records.put_many("address", {f"a-{i}": {"n": i} for i in range(1200)})
    assert await records.count("address") == 1200
    assert await records.get("address", "a-1") == {"n": 1}
    assert await records.get("address", "a-1199") == {"n": 1199}
    assert await records.delete("address") == 1200


async def test_instances_do_not_share_records(make_instance):
    first = (await make_instance("family-sample", "ville")).records
    second = (await make_instance("family-sample", "autre")).records
    await first.put("token", "current", {"value": "one"})
    assert await second.get("token", "current") is None
    await second.put("token", "current", {"value": "two"})
    assert await first.get("token", "current") == {"value": "one"}


async def test_expired_records_are_hidden_then_purged(make_instance, sessionmaker, hub_settings):
    records = (await make_instance("family-sample", "ville")).records
    await records.put("address", "old", {"n": 1}, ttl=3600)
    await records.put("address", "kept", {"n": 2})
    assert await records.get("address", "old") == {"n": 1}
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Record).where(Record.key == "old").values(expires=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await records.get("address", "old") is None
    assert await records.count("address") == 1

    assert await purge_expired(sessionmaker, hub_settings) == 1
    async with sessionmaker() as session:
        assert (await session.scalars(select(Record.key))).all() == ["kept"]
    # Writing an expired key again brings it back.
    await records.put("address", "old", {"n": 3})
    assert await records.get("address", "old") == {"n": 3}


async def test_records_go_with_their_instance(make_instance, sessionmaker, hub_client):
    records = (await make_instance("family-sample", "ville")).records
    await records.put("address", "x", {"n": 1})
    response = await hub_client.delete(
        "/manage/api/instances/family-sample/ville/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status in (200, 204)
    async with sessionmaker() as session:
        assert (await session.scalars(select(Record))).all() == []


@pytest.mark.parametrize(
    ("kind", "key", "ttl"),
    [("", "k", None), ("k" * 65, "k", None), ("address", "", None), ("address", "k" * 256, None), ("a", "k", 0)],
)
async def test_bad_kinds_keys_and_ttls_are_refused(make_instance, kind, key, ttl):
    records = (await make_instance("family-sample", "ville")).records
    with pytest.raises(ValueError, match="record"):
        await records.put(kind, key, {"n": 1}, ttl=ttl)
