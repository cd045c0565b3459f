"""API keys that rotate, through the admin API and the import/export file; keys are
never shown, previous ones included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from passerelle.hub import HUB
from passerelle.testing import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def admin(client, method, path, **kwargs):
    response = await client.request(method, f"/manage/api{path}", headers=AUTH, **kwargs)
    return response.status, await response.json()


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def test_rotate_action(hub_client):
    status, payload = await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "SIGN", "key": "old-secret"})
    assert status == 201
    assert payload["data"]["previous_key_set"] is False and payload["data"]["previous_key_expires"] is None

    before = datetime.now(UTC)
    status, payload = await admin(hub_client, "POST", "/apiusers/wcs/rotate/", json={"key": "new-secret", "grace": 600})
    assert status == 200, payload
    user = payload["data"]
    assert user["key_set"] is True and user["previous_key_set"] is True
    expires = datetime.fromisoformat(user["previous_key_expires"])
    assert before + timedelta(seconds=590) < expires < datetime.now(UTC) + timedelta(seconds=610)
    assert "secret" not in str(payload)

    # Listed the same way.
    status, payload = await admin(hub_client, "GET", "/apiusers/")
    assert payload["data"][0]["previous_key_set"] is True and "secret" not in str(payload)

    # The default grace is one day; a grace of 0 ends the rotation at once.
    status, payload = await admin(hub_client, "POST", "/apiusers/wcs/rotate", json={"key": "third-secret"})
    expires = datetime.fromisoformat(payload["data"]["previous_key_expires"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    status, payload = await admin(hub_client, "POST", "/apiusers/wcs/rotate/", json={"key": "fourth", "grace": 0})
    assert payload["data"]["previous_key_set"] is False and payload["data"]["previous_key_expires"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'key': the new key is required"),
        ({"key": ""}, "'key': the new key is required"),
        ({"key": 12}, "'key': the new key is required"),
        ({"key": "k", "grace": -1}, "'grace': seconds the current key stays accepted"),
        ({"key": "k", "grace": "1d"}, "'grace'"),
        ({"key": "k", "grace": True}, "'grace'"),
        ({"key": "k", "grace": 10**9}, "'grace'"),
        ({"key": "k", "previous_key": "x"}, "with 'key' (the new key) and 'grace'"),
        (["k"], "with 'key' (the new key) and 'grace'"),
    ],
)
async def test_rotate_refuses_bad_bodies(hub_client, body, message):
    await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "key": "k0"})
    status, payload = await admin(hub_client, "POST", "/apiusers/wcs/rotate/", json=body)
    assert status == 400
    assert message in payload["err_desc"]


async def test_rotate_unknown_or_open_user(hub_client):
    status, payload = await admin(hub_client, "POST", "/apiusers/nobody/rotate/", json={"key": "k"})
    assert (status, payload["err_desc"]) == (404, "no API user named 'nobody'")
    await admin(hub_client, "PUT", "/apiusers/all/", json={"keytype": ""})
    status, payload = await admin(hub_client, "POST", "/apiusers/all/rotate/", json={"key": "k"})
    assert status == 400 and "open (no key)" in payload["err_desc"]


async def test_put_with_previous_key_needs_an_expiry(hub_client):
    body = {"keytype": "API", "key": "new", "previous_key": "old"}
    status, payload = await admin(hub_client, "PUT", "/apiusers/wcs/", json=body)
    assert status == 400
    assert "field 'previous_key_expires': required with a previous key" in payload["err_desc"]
    status, payload = await admin(
        hub_client, "PUT", "/apiusers/wcs/", json={**body, "previous_key_expires": in_hours(2)}
    )
    assert status == 201 and payload["data"]["previous_key_set"] is True
    # Left out, the previous key stays; empty, the rotation ends.
    status, payload = await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "description": "d"})
    assert payload["data"]["previous_key_set"] is True
    status, payload = await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "previous_key": ""})
    assert payload["data"]["previous_key_set"] is False
    status, payload = await admin(hub_client, "PUT", "/apiusers/wcs/", json={"previous_key_expires": "tomorrow"})
    assert status == 400 and "previous_key_expires" in payload["err_desc"]


async def test_export_names_the_previous_key_by_reference_and_import_restores_it(hub_app, hub_client, monkeypatch):
    expires = in_hours(3)
    document = {
        "apiusers": [
            {
                "username": "wcs",
                "keytype": "SIGN",
                "key": "k-new",
                "previous_key": "k-old",
                "previous_key_expires": expires,
            },
            {
                "username": "done",
                "keytype": "API",
                "key": "k",
                "previous_key": "gone",
                "previous_key_expires": in_hours(-1),
            },
            {"username": "open", "keytype": "", "previous_key": "ignored", "previous_key_expires": expires},
        ]
    }
    status, payload = await admin(hub_client, "POST", "/import/", json=document)
    assert status == 200, payload
    status, payload = await admin(hub_client, "GET", "/export/")
    exported = {u["username"]: u for u in payload["data"]["apiusers"]}
    assert exported["wcs"]["key"] == {"$env": "PASSERELLE_SECRET_APIUSER_WCS_KEY"}
    assert exported["wcs"]["previous_key"] == {"$env": "PASSERELLE_SECRET_APIUSER_WCS_PREVIOUS_KEY"}
    assert datetime.fromisoformat(exported["wcs"]["previous_key_expires"]) == datetime.fromisoformat(expires)
    # An expired previous key is not worth exporting; an open user has none.
    assert "previous_key" not in exported["done"] and "previous_key_expires" not in exported["done"]
    assert "previous_key" not in exported["open"]
    status, payload = await admin(hub_client, "GET", "/export/?secrets=omit")
    omitted = {u["username"]: u for u in payload["data"]["apiusers"]}
    assert "previous_key" not in omitted["wcs"] and "key" not in omitted["wcs"]
    assert "previous_key_expires" in omitted["wcs"]
    text = str(exported) + str(omitted)
    assert "k-old" not in text and "k-new" not in text and "gone" not in text

    # Re-imported with the variables set (here, over the same users), the rotation goes on.
    monkeypatch.setenv("PASSERELLE_SECRET_APIUSER_WCS_KEY", "k-new2")
    monkeypatch.setenv("PASSERELLE_SECRET_APIUSER_WCS_PREVIOUS_KEY", "k-old2")
    monkeypatch.setenv("PASSERELLE_SECRET_APIUSER_DONE_KEY", "k")
    status, payload = await admin(hub_client, "POST", "/import/", json={"apiusers": list(exported.values())})
    assert status == 200, payload
    caller = hub_app[HUB].registry.callers["wcs"]
    assert caller.active_keys(datetime.now(UTC)) == ("k-new2", "k-old2")
    assert hub_app[HUB].registry.callers["done"].active_keys(datetime.now(UTC)) == ("k",)
