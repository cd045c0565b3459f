"""Admin API: an instance's resource logs (search and filters), its availability (state,
history, check now), and its log level (admin API and configuration files)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from passerelle.configfile import ConfigFileError, validate_document
from passerelle.hub import HUB
from passerelle.management import Manager
from passerelle.storage.models import ResourceLog, utcnow
from passerelle.testing import ADMIN_TOKEN
from tests.passerelle.test_availability import BEHAVIOUR, Probe, down

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALICE = "a11ce000000000000000000000000000"
BOB = "b0b00000000000000000000000000000"
LOGS = "/instances/probe/p/logs/"


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "probe": Probe}


@pytest.fixture(autouse=True)
def _clean_behaviours():
    BEHAVIOUR.clear()
    yield
    BEHAVIOUR.clear()


async def admin(client, method, path, **kwargs):
    response = await client.request(method, f"/manage/api{path}", headers=AUTH, **kwargs)
    return response.status, await response.json()


async def say(client, message: str, level: str = "info", request_id: str | None = None, **params: str) -> None:
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = await client.get("/probe/p/say", params={"message": message, "level": level, **params}, headers=headers)
    assert response.status == 200, await response.text()


@pytest.fixture
async def logged(hub_app, hub_client, make_instance):
    """Lines of the probe/p instance: one per call below, plus the calls' own lines."""
    probe = await make_instance("probe", "p")
    await make_instance("probe", "other")
    status, _ = await admin(hub_client, "PATCH", "/instances/probe/p/", json={"log_level": "DEBUG"})
    assert status == 200
    await say(hub_client, "cache warmed", "debug", request_id="req-1")
    await say(hub_client, "invoice 12 paid", "info", request_id="req-2", NameID=ALICE)
    await say(hub_client, "slow answer from the application", "warning", request_id="req-3", NameID=BOB)
    await say(hub_client, "Invoice 13 refused", "error", request_id="req-4", NameID=ALICE)
    other = await hub_client.get("/probe/other/say", params={"message": "invoice elsewhere"})
    assert other.status == 200
    hub = hub_app[HUB]
    await hub.registry.resource_logs.flush(everything=True)
    # Spread the lines over four days, oldest first: one call (two lines) a day.
    async with hub.sessionmaker() as session, session.begin():
        for days, request_id in ((3, "req-1"), (2, "req-2"), (1, "req-3"), (0, "req-4")):
            await session.execute(
                update(ResourceLog)
                .where(ResourceLog.request_id == request_id)
                .values(timestamp=utcnow() - timedelta(days=days))
            )
    return probe


def messages(payload) -> list[str]:
    return [line["message"] for line in payload["data"] if "endpoint" not in line["extra"]]


async def test_logs_newest_first_with_their_fields(hub_client, logged):
    status, payload = await admin(hub_client, "GET", "/instances/probe/p/logs/")
    assert status == 200, payload
    assert payload["count"] == 8 and (payload["limit"], payload["offset"]) == (100, 0)
    assert messages(payload) == [
        "Invoice 13 refused",
        "slow answer from the application",
        "invoice 12 paid",
        "cache warmed",
    ]
    line = next(line for line in payload["data"] if line["message"] == "invoice 12 paid")
    assert line["level"] == "INFO" and line["name_id"] == ALICE and line["request_id"] == "req-2"
    assert set(line) == {"id", "timestamp", "level", "message", "request_id", "name_id", "extra"}
    assert "invoice elsewhere" not in str(payload)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=warning", ["Invoice 13 refused", "slow answer from the application"]),
        ("level=ERROR", ["Invoice 13 refused"]),
        ("q=INVOICE", ["Invoice 13 refused", "invoice 12 paid"]),
        ("q=12%25", []),  # % is a character to find, not a wildcard
        ("request_id=req-3", ["slow answer from the application"]),
        (f"name_id={ALICE}", ["Invoice 13 refused", "invoice 12 paid"]),
        (f"name_id={ALICE}&level=error", ["Invoice 13 refused"]),
    ],
)
async def test_logs_filters(hub_client, logged, query, expected):
    status, payload = await admin(hub_client, "GET", f"/instances/probe/p/logs/?{query}")
    assert status == 200, payload
    assert messages(payload) == expected


async def test_logs_between_two_moments(hub_client, logged):
    now = utcnow()
    since = (now - timedelta(days=2, hours=12)).isoformat()
    until = (now - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S")  # no offset: UTC
    status, payload = await admin(hub_client, "GET", LOGS, params={"since": since, "until": until})
    assert status == 200, payload
    assert messages(payload) == ["slow answer from the application", "invoice 12 paid"]
    # The same moment written with another offset.
    local = (now - timedelta(days=2, hours=12)).astimezone().isoformat()
    _, payload = await admin(hub_client, "GET", LOGS, params={"since": local, "until": until})
    assert messages(payload) == ["slow answer from the application", "invoice 12 paid"]


async def test_logs_pages(hub_client, logged):
    _, first = await admin(hub_client, "GET", "/instances/probe/p/logs/?limit=3")
    _, second = await admin(hub_client, "GET", "/instances/probe/p/logs/?limit=3&offset=3")
    _, everything = await admin(hub_client, "GET", "/instances/probe/p/logs/")
    assert len(first["data"]) == len(second["data"]) == 3
    assert first["count"] == second["count"] == 8
    assert first["data"] + second["data"] == everything["data"][:6]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=LOUD", "invalid value for parameter 'level': expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("since=yesterday", "invalid value for parameter 'since': expected an ISO 8601 date or time"),
        ("until=2026-13-01", "invalid value for parameter 'until': expected an ISO 8601 date or time"),
        ("since=2026-11-02&until=2026-11-01", "'since' must be before 'until'"),
        ("limit=0", "invalid value for parameter 'limit': expected an integer from 1 to 1000"),
        ("limit=1001", "invalid value for parameter 'limit': expected an integer from 1 to 1000"),
        ("offset=-1", "invalid value for parameter 'offset': expected an integer 0 or more"),
        ("offset=x", "invalid value for parameter 'offset'"),
        ("levle=error", "unknown parameter 'levle' (accepted: level, since, until, q, request_id, name_id"),
    ],
)
async def test_bad_log_filters_are_400(hub_client, logged, query, expected):
    status, payload = await admin(hub_client, "GET", f"/instances/probe/p/logs/?{query}")
    assert status == 400, payload
    assert payload["err_class"] == "passerelle.envelope.WrongParameter"
    assert payload["err_desc"].startswith(expected), payload["err_desc"]


async def test_unknown_instances_are_404(hub_client, logged):
    for path in ("/instances/probe/nope/logs/", "/instances/probe/nope/availability/"):
        status, payload = await admin(hub_client, "GET", path)
        assert (status, payload["err_desc"]) == (404, "no probe instance named 'nope'")
    status, _ = await admin(hub_client, "POST", "/instances/probe/nope/availability/check/")
    assert status == 404


async def test_monitoring_needs_the_admin_token(hub_client, logged):
    for method, path in (
        ("GET", "/manage/api/instances/probe/p/logs/"),
        ("GET", "/manage/api/instances/probe/p/availability/"),
        ("POST", "/manage/api/instances/probe/p/availability/check/"),
    ):
        assert (await hub_client.request(method, path)).status == 401


async def test_check_now_and_the_history(hub_client, make_instance):
    await make_instance("probe", "p")
    status, payload = await admin(hub_client, "GET", "/instances/probe/p/availability/")
    assert (status, payload["data"], payload["count"]) == (200, {"current": None, "history": []}, 0)

    status, payload = await admin(hub_client, "POST", "/instances/probe/p/availability/check/")
    assert status == 200, payload
    assert payload["data"]["current"]["status"] == "up"
    BEHAVIOUR["p"] = down("refused")
    status, payload = await admin(hub_client, "POST", "/instances/probe/p/availability/check/")
    current = payload["data"]["current"]
    assert (current["status"], current["message"], current["notified_status"]) == (
        "down",
        "ConnectionError: refused",
        "down",
    )
    assert current["since"] and current["last_check"]
    BEHAVIOUR["p"] = down("still refused")
    await admin(hub_client, "POST", "/instances/probe/p/availability/check/")

    status, payload = await admin(hub_client, "GET", "/instances/probe/p/availability/?limit=1")
    assert status == 200
    assert payload["count"] == 2
    assert payload["data"]["current"]["message"] == "ConnectionError: still refused"
    assert [(e["status"], e["message"]) for e in payload["data"]["history"]] == [("down", "ConnectionError: refused")]
    _, payload = await admin(hub_client, "GET", "/instances/probe/p/availability/?limit=1&offset=1")
    assert [e["status"] for e in payload["data"]["history"]] == ["up"]
    status, payload = await admin(hub_client, "GET", "/instances/probe/p/availability/?limit=x")
    assert status == 400 and "'limit'" in payload["err_desc"]


async def test_a_check_now_logs_to_the_instance(hub_app, hub_client, make_instance):
    await make_instance("probe", "p")
    BEHAVIOUR["p"] = down("refused")
    await admin(hub_client, "POST", "/instances/probe/p/availability/check/")
    await hub_app[HUB].registry.resource_logs.flush()
    _, payload = await admin(hub_client, "GET", "/instances/probe/p/logs/?level=error")
    assert [line["message"] for line in payload["data"]] == ["unavailable: ConnectionError: refused"]


# -- the instance's log level -----------------------------------------------------------


async def test_log_level_is_set_shown_and_validated(hub_client, make_instance):
    await make_instance("probe", "p")
    status, payload = await admin(hub_client, "GET", "/instances/probe/p/")
    assert payload["data"]["log_level"] == ""
    status, payload = await admin(hub_client, "PATCH", "/instances/probe/p/", json={"log_level": "warning"})
    assert (status, payload["data"]["log_level"]) == (200, "WARNING")
    # Left out: unchanged.
    status, payload = await admin(hub_client, "PATCH", "/instances/probe/p/", json={"title": "P"})
    assert payload["data"]["log_level"] == "WARNING"
    status, payload = await admin(hub_client, "PUT", "/instances/probe/p/", json={"title": "P"})
    assert (status, payload["data"]["log_level"]) == (200, "WARNING")
    status, payload = await admin(hub_client, "PUT", "/instances/probe/p/", json={"title": "P", "log_level": ""})
    assert payload["data"]["log_level"] == ""

    status, payload = await admin(hub_client, "PATCH", "/instances/probe/p/", json={"log_level": "verbose"})
    assert status == 400
    assert "'log_level'" in payload["err_desc"] and "unknown log level 'verbose'" in payload["err_desc"]
    status, payload = await admin(
        hub_client, "POST", "/instances/", json={"type": "probe", "slug": "q", "title": "Q", "log_level": "DEBUG"}
    )
    assert (status, payload["data"]["log_level"]) == (201, "DEBUG")


async def test_log_level_is_exported_and_imported(hub_app, hub_client, make_instance):
    await make_instance("probe", "p")
    hub = hub_app[HUB]
    manager = Manager(hub.sessionmaker, hub.types, hub.registry.secrets)
    await admin(hub_client, "PATCH", "/instances/probe/p/", json={"log_level": "ERROR"})
    document = await manager.export_document()
    [entry] = [i for i in document["instances"] if i["slug"] == "p"]
    assert entry["log_level"] == "ERROR"

    entry["log_level"] = "debug"
    await manager.import_document(document)
    await hub.registry.reload()
    assert (await manager.get_instance("probe", "p")).log_level == "DEBUG"
    assert hub.registry.lookup("probe", "p").logger.level == 10

    # A document written before log levels existed keeps the stored one.
    del entry["log_level"]
    await manager.import_document(document)
    assert (await manager.get_instance("probe", "p")).log_level == "DEBUG"

    with pytest.raises(ConfigFileError, match=r"instance probe/p .*field 'log_level'"):
        validate_document({"instances": [{**entry, "log_level": "LOUD"}]})
