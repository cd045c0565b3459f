"""The NameID link registry (passerelle.links), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import pytest
from sqlalchemy import select

from passerelle.envelope import NotLinked, WrongParameter
from passerelle.hub import HUB
from passerelle.storage.models import Link, LinkAudit

ALICE = "6e3c1a2b-0000-4000-8000-00000000a11c"
BOB = "6e3c1a2b-0000-4000-8000-000000000b0b"


@pytest.fixture
def sessionmaker(hub_app):
    return hub_app[HUB].sessionmaker


async def audit_rows(sessionmaker, **where):
    query = select(LinkAudit).order_by(LinkAudit.id)
    for name, value in where.items():
        query = query.where(getattr(LinkAudit, name) == value)
    async with sessionmaker() as session:
        return (await session.scalars(query)).all()


async def link_rows(sessionmaker):
    async with sessionmaker() as session:
        return (await session.scalars(select(Link).order_by(Link.id))).all()


async def test_link_resolve_unlink(make_instance, sessionmaker):
    connector = await make_instance("family-sample", "ville")
    links = connector.links

    assert await links.get(ALICE) is None
    assert await links.list(ALICE) == []
    with pytest.raises(NotLinked) as caught:
        await links.resolve(ALICE)
    assert caught.value.err_class() == "passerelle.envelope.NotLinked"
    assert caught.value.status == 200

    assert await links.link(ALICE, "F001", extra={"text": "Famille Martin"}, actor="apiuser:wcs") is True
    record = await links.resolve(ALICE)
    assert (record.instance, record.name_id, record.external_id) == ("family-sample/ville", ALICE, "F001")
    assert record.extra == {"text": "Famille Martin"}
    assert isinstance(record.created, datetime) and record.created.tzinfo is not None
    assert record.last_verified == record.created
    assert await links.list(ALICE) == [record]

    assert await links.unlink(ALICE, actor="apiuser:wcs") is True
    assert await links.unlink(ALICE, actor="apiuser:wcs") is False
    with pytest.raises(NotLinked):
        await links.resolve(ALICE)

    actions = [(row.action, row.actor, row.detail) for row in await audit_rows(sessionmaker)]
    assert actions == [
        ("link", "apiuser:wcs", {"external_id": "F001"}),
        ("unlink", "apiuser:wcs", {"external_id": "F001"}),
    ]


async def test_relink_and_verify_keep_one_link(make_instance, sessionmaker):
    connector = await make_instance("family-sample", "ville")
    links = connector.links
    assert await links.link(ALICE, "F001", actor="a") is True
    first = await links.resolve(ALICE)

    # The same account proved again: a verification.
    assert await links.link(ALICE, "F001", extra={"text": "Martin"}, actor="b") is False
    again = await links.resolve(ALICE)
    assert again.created == first.created
    assert again.last_verified >= first.last_verified
    assert again.extra == {"text": "Martin"}

    # Another account: the link moves to it.
    assert await links.link(ALICE, "F002", actor="c") is False
    moved = await links.resolve(ALICE)
    assert moved.external_id == "F002"
    assert moved.extra == {}
    assert moved.created == first.created

    checked = await links.verify(ALICE, actor="job")
    assert checked.external_id == "F002"
    assert checked.last_verified >= moved.last_verified
    with pytest.raises(NotLinked):
        await links.verify(BOB)

    assert len(await link_rows(sessionmaker)) == 1
    actions = [(row.action, row.actor, row.detail) for row in await audit_rows(sessionmaker)]
    assert actions == [
        ("link", "a", {"external_id": "F001"}),
        ("verify", "b", {"external_id": "F001"}),
        ("relink", "c", {"external_id": "F002", "previous_external_id": "F001"}),
        ("verify", "job", {"external_id": "F002"}),
    ]


async def test_links_are_per_instance(make_instance):
    ville = await make_instance("family-sample", "ville")
    agglo = await make_instance("family-sample", "agglo")
    await ville.links.link(ALICE, "F001")
    await agglo.links.link(ALICE, "F003")
    await ville.links.link(BOB, "F002")
    assert (await ville.links.resolve(ALICE)).external_id == "F001"
    assert (await agglo.links.resolve(ALICE)).external_id == "F003"
    with pytest.raises(NotLinked):
        await agglo.links.resolve(BOB)
    await ville.links.unlink(ALICE)
    assert (await agglo.links.resolve(ALICE)).external_id == "F003"
    assert (await ville.links.resolve(BOB)).external_id == "F002"


@pytest.mark.parametrize("name_id", [None, "", "   ", "x" * 257])
async def test_a_missing_or_empty_name_id_is_a_wrong_parameter(make_instance, name_id):
    links = (await make_instance("family-sample", "ville")).links
    for call in (
        links.link(name_id, "F001"),
        links.resolve(name_id),
        links.list(name_id),
        links.unlink(name_id),
        links.verify(name_id),
    ):
        with pytest.raises(WrongParameter) as caught:
            await call
        assert caught.value.status == 400
        assert "NameID" in caught.value.message


async def test_an_empty_external_id_is_a_bug(make_instance):
    links = (await make_instance("family-sample", "ville")).links
    with pytest.raises(ValueError):
        await links.link(ALICE, "")
    with pytest.raises(ValueError):
        await links.link(ALICE, "x" * 257)


async def test_concurrent_links_of_one_name_id_leave_one_consistent_link(make_instance, sessionmaker):
    links = (await make_instance("family-sample", "ville")).links
    accounts = [f"F{i:03}" for i in range(20)]
    created = await asyncio.gather(*(links.link(ALICE, account, actor=account) for account in accounts))

    assert created.count(True) == 1
    rows = await link_rows(sessionmaker)
    assert len(rows) == 1
    final = await links.resolve(ALICE)
    assert final.external_id in accounts

    # Every call left exactly one audit row, the first a creation, and the trail
    # ends on the account the link holds.
    trail = await audit_rows(sessionmaker, name_id=ALICE)
    assert len(trail) == len(accounts)
    assert sorted(row.actor for row in trail) == accounts
    assert trail[0].action == "link"
    assert all(row.action in ("relink", "verify") for row in trail[1:])
    assert trail[-1].detail["external_id"] == final.external_id
    # Each relink names the account it replaced: the trail is one chain.
    for before, after in itertools.pairwise(trail):
        if after.action == "relink":
            assert after.detail["previous_external_id"] == before.detail["external_id"]


async def test_concurrent_links_of_one_account_create_once(make_instance, sessionmaker):
    links = (await make_instance("family-sample", "ville")).links
    created = await asyncio.gather(*(links.link(ALICE, "F001", actor="wcs") for _ in range(20)))
    assert created.count(True) == 1
    assert len(await link_rows(sessionmaker)) == 1
    assert [row.action for row in await audit_rows(sessionmaker)].count("link") == 1


async def test_connector_outside_the_hub_has_no_links():
    from passerelle.connectors import EmptyConfig, InstanceInfo
    from passerelle.settings import Settings
    from tests.passerelle.family_sample import FamilySample

    connector = FamilySample(InstanceInfo(1, "family-sample", "x", "X"), EmptyConfig(), Settings())
    with pytest.raises(RuntimeError, match="no database"):
        _ = connector.links
