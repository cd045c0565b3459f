"""Linking connectors end to end: the standard link / unlink / links endpoints and
resolve/NotLinked, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from structlog.testing import capture_logs

from passerelle import LinkingConnector
from passerelle.hub import HUB
from passerelle.storage.models import Link, LinkAudit
from passerelle.testing import check_conformance
from tests.passerelle.family_sample import FamilyProof

ALICE = "a1a1a1a1-0000-4000-8000-000000000001"
BOB = "b0b0b0b0-0000-4000-8000-000000000002"
MARTIN = {"family_id": "F001", "last_name": "martin", "birth_date": "1980-05-17"}
BERNARD = {"family_id": "F002", "last_name": "Bernard", "birth_date": "1975-11-02"}


@pytest.fixture
async def family(make_instance):
    return await make_instance("family-sample", "ville")


async def call(client, method, path, name_id=None, **kwargs):
    params = {"NameID": name_id} if name_id is not None else {}
    response = await client.request(method, f"/family-sample/ville/{path}", params=params, **kwargs)
    return response.status, await response.json()


async def rows(hub_app, model):
    async with hub_app[HUB].sessionmaker() as session:
        return (await session.scalars(select(model).order_by(model.id))).all()


async def test_link_then_every_call_takes_only_the_name_id(hub_client, family):
    status, payload = await call(hub_client, "POST", "link", ALICE, json=MARTIN)
    assert status == 200, payload
    assert payload["err"] == 0
    data = payload["data"]
    assert data["created"] is True
    assert data["link"]["id"] == "F001"
    assert data["link"]["text"] == "Famille Martin"
    assert data["link"]["created"] == data["link"]["last_verified"]

    status, payload = await call(hub_client, "GET", "family", ALICE)
    assert (status, payload) == (
        200,
        {"err": 0, "data": {"id": "F001", "last_name": "Martin", "children": ["Léa", "Hugo"]}},
    )

    status, payload = await call(hub_client, "GET", "links", ALICE)
    assert status == 200
    assert [(link["id"], link["text"]) for link in payload["data"]] == [("F001", "Famille Martin")]
    assert (await call(hub_client, "GET", "links", BOB))[1] == {"err": 0, "data": []}

    # Linking again: not created; another family replaces the first.
    status, payload = await call(hub_client, "POST", "link", ALICE, json=MARTIN)
    assert payload["data"]["created"] is False
    status, payload = await call(hub_client, "POST", "link", ALICE, json=BERNARD)
    assert payload["data"]["created"] is False
    assert payload["data"]["link"]["id"] == "F002"
    assert (await call(hub_client, "GET", "family", ALICE))[1]["data"]["id"] == "F002"


async def test_not_linked_is_a_stable_error_class(hub_client, family):
    status, payload = await call(hub_client, "GET", "family", ALICE)
    assert status == 200
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.NotLinked"
    assert payload["err_desc"]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_unlink(hub_client, family, method):
    await call(hub_client, "POST", "link", ALICE, json=MARTIN)
    await call(hub_client, "POST", "link", BOB, json=BERNARD)
    status, payload = await call(hub_client, method, "unlink", ALICE)
    assert (status, payload) == (200, {"err": 0, "data": {"deleted": True}})
    assert (await call(hub_client, "GET", "family", ALICE))[1]["err_class"] == "passerelle.envelope.NotLinked"
    assert (await call(hub_client, "GET", "links", ALICE))[1]["data"] == []
    # Bob keeps his link.
    assert (await call(hub_client, "GET", "family", BOB))[1]["data"]["id"] == "F002"
    # Nothing left to unlink.
    status, payload = await call(hub_client, method, "unlink", ALICE)
    assert status == 200
    assert payload["err_class"] == "passerelle.envelope.NotLinked"


@pytest.mark.parametrize(
    "proof",
    [
        {**MARTIN, "birth_date": "1980-05-18"},
        {**MARTIN, "last_name": "Bernard"},
        {**MARTIN, "family_id": "F999"},
    ],
)
async def test_a_wrong_proof_links_nothing(hub_client, hub_app, family, proof):
    status, payload = await call(hub_client, "POST", "link", ALICE, json=proof)
    assert (status, payload["err"], payload["err_class"]) == (200, 1, "passerelle.envelope.APIError")
    assert payload["err_desc"] == "no family matches these details"
    assert await rows(hub_app, Link) == []
    assert await rows(hub_app, LinkAudit) == []
    assert (await call(hub_client, "GET", "family", ALICE))[1]["err_class"] == "passerelle.envelope.NotLinked"


@pytest.mark.parametrize("name_id", [None, ""])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "link", MARTIN), ("POST", "unlink", None), ("DELETE", "unlink", None), ("GET", "links", None)],
)
async def test_a_missing_name_id_is_a_400_naming_it(hub_client, hub_app, family, name_id, method, path, body):
    status, payload = await call(hub_client, method, path, name_id, json=body)
    assert status == 400
    assert payload["err_class"] == "passerelle.envelope.WrongParameter"
    assert "NameID" in payload["err_desc"]
    assert await rows(hub_app, Link) == []
    # The family endpoint resolves through the same check.
    status, payload = await call(hub_client, "GET", "family", name_id)
    assert status == 400
    assert "NameID" in payload["err_desc"]


async def test_an_invalid_proof_body_is_a_400_that_does_not_echo_it(hub_client, hub_app, family):
    status, payload = await call(hub_client, "POST", "link", ALICE, json={**MARTIN, "birth_date": "17/05/1980"})
    assert status == 400
    assert payload["err_class"] == "passerelle.envelope.InvalidBody"
    assert "birth_date" in payload["err_desc"]
    assert "17/05/1980" not in str(payload)
    status, payload = await call(hub_client, "POST", "link", ALICE, json={"family_id": "F001"})
    assert status == 400
    assert await rows(hub_app, Link) == []


async def test_the_proof_is_never_stored_logged_nor_returned(hub_client, hub_app, family, capsys):
    secret_date = "1980-05-17"
    with capture_logs() as logs:
        answers = [
            await call(hub_client, "POST", "link", ALICE, json=MARTIN),
            await call(hub_client, "POST", "link", ALICE, json={**MARTIN, "birth_date": "1980-05-16"}),
            await call(hub_client, "GET", "links", ALICE),
            await call(hub_client, "DELETE", "unlink", ALICE),
            await call(hub_client, "POST", "link", ALICE, json=MARTIN),
        ]
    stored = [vars(row) for row in await rows(hub_app, Link)] + [vars(row) for row in await rows(hub_app, LinkAudit)]
    assert len(stored) == 4  # the link, and link, unlink, link in the trail
    for where in (str(answers), str(stored), str(logs), str(capsys.readouterr())):
        assert secret_date not in where
        assert "1980-05-16" not in where
        assert "birth_date" not in where
        assert "last_name" not in where


async def test_the_audit_trail_names_the_api_user(hub_client, hub_app, family):
    await call(hub_client, "POST", "link", ALICE, json=MARTIN)
    await call(hub_client, "POST", "link", ALICE, json=MARTIN)
    await call(hub_client, "POST", "link", ALICE, json=BERNARD)
    await call(hub_client, "DELETE", "unlink", ALICE)
    trail = [(row.instance, row.name_id, row.action, row.actor, row.detail) for row in await rows(hub_app, LinkAudit)]
    assert trail == [
        ("family-sample/ville", ALICE, "link", "apiuser:everyone", {"external_id": "F001"}),
        ("family-sample/ville", ALICE, "verify", "apiuser:everyone", {"external_id": "F001"}),
        (
            "family-sample/ville",
            ALICE,
            "relink",
            "apiuser:everyone",
            {"external_id": "F002", "previous_external_id": "F001"},
        ),
        ("family-sample/ville", ALICE, "unlink", "apiuser:everyone", {"external_id": "F002"}),
    ]


async def test_concurrent_link_calls_leave_one_link(hub_client, hub_app, family):
    answers = await asyncio.gather(
        *(call(hub_client, "POST", "link", ALICE, json=MARTIN if i % 2 else BERNARD) for i in range(12))
    )
    assert all(status == 200 and payload["err"] == 0 for status, payload in answers)
    assert [payload["data"]["created"] for _, payload in answers].count(True) == 1
    links = await rows(hub_app, Link)
    assert len(links) == 1
    trail = await rows(hub_app, LinkAudit)
    assert len(trail) == 12
    assert trail[-1].detail["external_id"] == links[0].external_id
    assert (await call(hub_client, "GET", "family", ALICE))[1]["data"]["id"] == links[0].external_id


async def test_linking_needs_the_access_right(hub_client, make_instance):
    await make_instance("family-sample", "ville", access=None)
    for method, path in (("POST", "link"), ("POST", "unlink"), ("GET", "links"), ("GET", "family")):
        status, _ = await call(hub_client, method, path, ALICE, json=MARTIN if path == "link" else None)
        assert status == 403, (method, path)


async def test_the_link_endpoint_documents_the_proof_body(hub_client, family):
    (spec,) = type(family).endpoints["link"]
    assert spec.methods == ("POST",)
    assert spec.body_model is FamilyProof
    assert set(spec.body_schema["properties"]) == {"family_id", "last_name", "birth_date"}
    assert type(family).endpoints["unlink"][0].methods == ("POST", "DELETE")
    assert type(family).endpoints["links"][0].methods == ("GET",)
    response = await hub_client.get("/family-sample/ville/", headers={"Accept": "application/json"})
    assert response.status == 200
    assert "birth_date" in await response.text()


async def test_the_linking_sample_is_conformant(hub_client, family):
    # The example calls carry no NameID: 400s, which conformance accepts.
    assert await check_conformance(hub_client, family) == []


def test_a_linking_connector_declares_its_proof():
    with pytest.raises(TypeError, match="LinkProof"):

        class NoProof(LinkingConnector):
            slug = "no-proof"
            title = "No proof"

    class Proof(BaseModel):
        card: str

    class Library(LinkingConnector):
        slug = "library"
        title = "Library"
        LinkProof = Proof

    class Branch(Library):
        slug = "branch"

    assert Library.endpoints["link"][0].body_model is Proof
    assert Branch.endpoints["link"][0].body_model is Proof
    assert {"link", "unlink", "links"} <= set(Branch.endpoints)
