"""Admin API: a citizen's rights of access and erasure across every instance."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from passerelle.envelope import NotLinked
from passerelle.hub import HUB
from passerelle.storage.models import Link, LinkAudit
from passerelle.testing import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALICE = "a1a1a1a1-0000-4000-8000-000000000001"
BOB = "b0b0b0b0-0000-4000-8000-000000000002"


async def admin(client, method, name_id, headers=AUTH):
    response = await client.request(method, f"/manage/api/citizens/{quote(name_id, safe='')}/", headers=headers)
    return response.status, await response.json()


@pytest.fixture
async def linked(make_instance):
    """Alice linked on two instances, Bob on one, with some history."""
    ville = await make_instance("family-sample", "ville")
    agglo = await make_instance("family-sample", "agglo")
    await ville.links.link(ALICE, "F001", extra={"text": "Famille Martin"}, actor="apiuser:wcs")
    await ville.links.link(ALICE, "F002", actor="apiuser:wcs")
    await agglo.links.link(ALICE, "F003", actor="apiuser:combo")
    await ville.links.link(BOB, "F009", actor="apiuser:wcs")
    await agglo.links.link(BOB, "F008", actor="apiuser:wcs")
    await agglo.links.unlink(BOB, actor="apiuser:wcs")
    return ville, agglo


async def table(hub_app, model):
    async with hub_app[HUB].sessionmaker() as session:
        return (await session.scalars(select(model).order_by(model.id))).all()


async def test_show_everything_about_one_name_id(hub_client, linked):
    status, payload = await admin(hub_client, "GET", ALICE)
    assert status == 200, payload
    data = payload["data"]
    assert data["name_id"] == ALICE
    assert [(link["instance"], link["external_id"], link["extra"]) for link in data["links"]] == [
        ("family-sample/agglo", "F003", {}),
        ("family-sample/ville", "F002", {}),
    ]
    assert all(link["created"] and link["last_verified"] for link in data["links"])
    assert [(entry["instance"], entry["action"], entry["actor"], entry["detail"]) for entry in data["link_audit"]] == [
        ("family-sample/ville", "link", "apiuser:wcs", {"external_id": "F001"}),
        ("family-sample/ville", "relink", "apiuser:wcs", {"external_id": "F002", "previous_external_id": "F001"}),
        ("family-sample/agglo", "link", "apiuser:combo", {"external_id": "F003"}),
    ]
    assert all(entry["timestamp"] for entry in data["link_audit"])
    assert BOB not in str(payload)
    assert "F009" not in str(payload) and "F008" not in str(payload)


async def test_show_an_unknown_name_id(hub_client, linked):
    status, payload = await admin(hub_client, "GET", "nobody")
    assert (status, payload) == (
        200,
        {
            "err": 0,
            "data": {
                "name_id": "nobody",
                "links": [],
                "link_audit": [],
                "resource logs": 0,
                "jobs": [],
                "response cache": 0,
            },
        },
    )


async def test_erase_removes_everything_about_the_name_id_and_nothing_else(hub_client, hub_app, linked):
    bob_before = await admin(hub_client, "GET", BOB)
    links_before = [(row.instance_id, row.name_id, row.external_id) for row in await table(hub_app, Link)]
    audit_before = [(row.id, row.name_id, row.action) for row in await table(hub_app, LinkAudit)]

    status, payload = await admin(hub_client, "DELETE", ALICE)
    assert status == 200, payload
    assert payload["data"] == {
        "removed": {"links": 2, "link_audit": 3, "resource logs": 0, "jobs": 0, "response cache": 0},
        "failed": [],
    }

    # Nothing about Alice is left, anywhere.
    assert await admin(hub_client, "GET", ALICE) == (
        200,
        {
            "err": 0,
            "data": {
                "name_id": ALICE,
                "links": [],
                "link_audit": [],
                "resource logs": 0,
                "jobs": [],
                "response cache": 0,
            },
        },
    )
    for row in [*await table(hub_app, Link), *await table(hub_app, LinkAudit)]:
        assert ALICE not in str(vars(row))
    with pytest.raises(NotLinked):
        await linked[0].links.resolve(ALICE)

    # Bob's links and history are untouched.
    assert await admin(hub_client, "GET", BOB) == bob_before
    assert [(row.instance_id, row.name_id, row.external_id) for row in await table(hub_app, Link)] == [
        link for link in links_before if link[1] == BOB
    ]
    audit_after = [(row.id, row.name_id, row.action) for row in await table(hub_app, LinkAudit)]
    assert audit_after[:-1] == [entry for entry in audit_before if entry[1] == BOB]

    # The erasure itself is audited, without the NameID: only counts.
    erasure = (await table(hub_app, LinkAudit))[-1]
    assert (erasure.action, erasure.name_id, erasure.instance, erasure.actor) == ("erase", "", "*", "admin")
    assert erasure.detail == {
        "removed": {"links": 2, "link_audit": 3, "resource logs": 0, "jobs": 0, "response cache": 0},
        "failed": [],
    }


async def test_erase_twice_and_unknown(hub_client, hub_app, linked):
    await admin(hub_client, "DELETE", ALICE)
    status, payload = await admin(hub_client, "DELETE", ALICE)
    assert (status, payload["data"]) == (
        200,
        {"removed": {"links": 0, "link_audit": 0, "resource logs": 0, "jobs": 0, "response cache": 0}, "failed": []},
    )
    erasures = [row for row in await table(hub_app, LinkAudit) if row.action == "erase"]
    assert len(erasures) == 2


async def test_a_store_registered_later_is_shown_and_erased(hub_client, hub_app, linked):
    cache = {ALICE: ["family F002"], BOB: ["family F009"]}

    async def find(name_id):
        return cache.get(name_id, [])

    async def erase(name_id):
        return len(cache.pop(name_id, []))

    hub_app[HUB].citizens.register("cache", find=find, erase=erase)
    _, payload = await admin(hub_client, "GET", ALICE)
    assert payload["data"]["cache"] == ["family F002"]
    status, payload = await admin(hub_client, "DELETE", ALICE)
    assert status == 200
    assert payload["data"]["removed"] == {
        "links": 2,
        "link_audit": 3,
        "resource logs": 0,
        "jobs": 0,
        "response cache": 0,
        "cache": 1,
    }
    assert cache == {BOB: ["family F009"]}
    with pytest.raises(ValueError):
        hub_app[HUB].citizens.register("cache", erase=erase)


async def test_a_failing_store_does_not_stop_the_erasure(hub_client, hub_app, linked):
    async def broken(name_id):
        raise ConnectionError(f"cache down while erasing {name_id}")

    hub_app[HUB].citizens.erasers.insert(0, ("cache", broken))
    status, payload = await admin(hub_client, "DELETE", ALICE)
    assert status == 500
    assert payload["err_class"] == "passerelle.envelope.InternalError"
    assert "cache" in payload["err_desc"]
    assert payload["data"] == {
        "removed": {"links": 2, "link_audit": 3, "resource logs": 0, "jobs": 0, "response cache": 0},
        "failed": ["cache"],
    }
    assert [row.name_id for row in await table(hub_app, Link)] == [BOB]
    erasure = (await table(hub_app, LinkAudit))[-1]
    assert (erasure.action, erasure.name_id, erasure.detail["failed"]) == ("erase", "", ["cache"])


async def test_name_ids_needing_quoting(hub_client, make_instance):
    ville = await make_instance("family-sample", "ville")
    odd = "_a b+c@idp.example"
    await ville.links.link(odd, "F001")
    _, payload = await admin(hub_client, "GET", odd)
    assert [link["external_id"] for link in payload["data"]["links"]] == ["F001"]
    status, payload = await admin(hub_client, "DELETE", odd)
    assert (status, payload["data"]["removed"]["links"]) == (200, 1)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_the_citizen_endpoints_need_the_admin_token(hub_client, hub_app, linked, method):
    status, payload = await admin(hub_client, method, ALICE, headers={})
    assert status == 401
    status, payload = await admin(hub_client, method, ALICE, headers={"Authorization": "Bearer wrong"})
    assert status == 403
    assert ALICE not in str(payload)
    assert len(await table(hub_app, Link)) == 3
    assert "erase" not in [row.action for row in await table(hub_app, LinkAudit)]
