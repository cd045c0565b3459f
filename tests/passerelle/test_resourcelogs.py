"""Resource logs (passerelle.resourcelogs): per-instance levels, redaction, batched
writes, the request's NameID, the line of each endpoint call, retention and shutdown."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, insert, select

from passerelle.dispatch import CALLED_ENDPOINT
from passerelle.hub import HUB, Hub
from passerelle.middleware import envelope_middleware
from passerelle.resourcelogs import CALLER, ResourceLogWriter
from passerelle.storage.models import ResourceLog, utcnow
from passerelle.testing import ADMIN_TOKEN, OPEN_USER
from tests.passerelle.test_availability import Probe

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NAME_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "probe": Probe}


@pytest.fixture
def hub_settings(hub_settings):
    # Every call stored, as an instance set to DEBUG does (at the default INFO, successes are not).
    hub_settings.resource_log_level = "DEBUG"
    return hub_settings


@pytest.fixture
def hub(hub_app, hub_client) -> Hub:
    return hub_app[HUB]


@pytest.fixture
def writer(hub) -> ResourceLogWriter:
    return hub.registry.resource_logs


async def rows(hub: Hub, instance_id: int | None = None) -> list[ResourceLog]:
    await hub.registry.resource_logs.flush(everything=True)
    async with hub.sessionmaker() as session:
        query = select(ResourceLog).order_by(ResourceLog.id)
        if instance_id is not None:
            query = query.where(ResourceLog.instance_id == instance_id)
        return list((await session.scalars(query)).all())


async def set_level(client, slug: str, level: str) -> None:
    response = await client.patch(f"/manage/api/instances/probe/{slug}/", json={"log_level": level}, headers=AUTH)
    assert response.status == 200, await response.text()


def said(found: list[ResourceLog]) -> list[tuple[str, str]]:
    """(level, message) of the connector's own lines (not the call lines)."""
    return [(logging.getLevelName(r.level), r.message) for r in found if "endpoint" not in r.extra]


async def test_each_instance_stores_from_its_own_level(hub, hub_client, make_instance, hub_settings):
    hub_settings.resource_log_level = "INFO"
    chatty = await make_instance("probe", "chatty")
    quiet = await make_instance("probe", "quiet")
    plain = await make_instance("probe", "plain")
    await set_level(hub_client, "chatty", "debug")
    await set_level(hub_client, "quiet", "ERROR")
    for slug in ("chatty", "quiet", "plain"):
        for level in ("debug", "info", "warning", "error"):
            response = await hub_client.get(f"/probe/{slug}/say", params={"message": f"{level} line", "level": level})
            assert response.status == 200

    assert said(await rows(hub, chatty.instance.id)) == [
        ("DEBUG", "debug line"),
        ("INFO", "info line"),
        ("WARNING", "warning line"),
        ("ERROR", "error line"),
    ]
    assert said(await rows(hub, quiet.instance.id)) == [("ERROR", "error line")]
    # No level of its own: the hub's RESOURCE_LOG_LEVEL (INFO).
    assert said(await rows(hub, plain.instance.id)) == [
        ("INFO", "info line"),
        ("WARNING", "warning line"),
        ("ERROR", "error line"),
    ]
    # The call lines follow the level too: the quiet instance kept none.
    assert [r for r in await rows(hub, quiet.instance.id) if "endpoint" in r.extra] == []

    # Back to the default: applied at once, without rebuilding the connector.
    await set_level(hub_client, "quiet", "")
    assert hub.registry.lookup("probe", "quiet") is quiet
    await hub_client.get("/probe/quiet/say", params={"message": "heard", "level": "info"})
    assert ("INFO", "heard") in said(await rows(hub, quiet.instance.id))


async def test_stored_lines_are_redacted(hub, hub_client, make_instance):
    probe = await make_instance("probe", "p")
    response = await hub_client.get(
        "/probe/p/say",
        params={
            "message": "no account for camille.dupont@example.org",
            "password": "hunter2-Pw",
            "phone": "06 12 34 56 78",
            "city": "Lyon",
        },
    )
    assert response.status == 200
    [line] = [r for r in await rows(hub, probe.instance.id) if "endpoint" not in r.extra]
    assert line.message == "no account for [email]"
    assert line.extra == {"password": "[secret]", "phone": "[phone]", "city": "Lyon"}
    # A parameter's name is written by the caller too.
    response = await hub_client.get("/probe/p/say?message=x&camille.dupont%40example.org=1")
    assert response.status == 200
    call = [r for r in await rows(hub, probe.instance.id) if "endpoint" in r.extra][-1]
    assert call.extra["params"] == ["[email]", "message"]
    stored = repr([(r.message, r.extra) for r in await rows(hub)])
    for value in ("camille.dupont", "hunter2-Pw", "06 12 34 56 78"):
        assert value not in stored


async def test_lines_of_a_call_take_its_name_id(hub, hub_client, make_instance):
    probe = await make_instance("probe", "p")
    await hub_client.get("/probe/p/say", params={"message": "looked up", "NameID": NAME_ID})
    await hub_client.get("/probe/p/say", params={"message": "anonymous"})
    await hub_client.get("/probe/p/say", params={"message": "named", "NameID": "someone-else"})
    found = await rows(hub, probe.instance.id)
    assert [(r.message, r.name_id) for r in found if "endpoint" not in r.extra] == [
        ("looked up", NAME_ID),
        ("anonymous", ""),
        ("named", "someone-else"),
    ]
    # Each line carries its call's request id, and so does the call's own line.
    by_request: dict[str, list[str]] = {}
    for row in found:
        by_request.setdefault(row.request_id, []).append(row.message)
    assert len(by_request) == 3 and all(len(messages) == 2 for messages in by_request.values())


async def test_an_explicit_name_id_wins(hub, make_instance, writer):
    probe = await make_instance("probe", "p")
    probe.logger.info("by argument", name_id="abc")
    probe.logger.info("by field", NameID="def", amount=3)
    probe.logger.info("nobody")
    assert [(r.message, r.name_id) for r in await rows(hub, probe.instance.id)] == [
        ("by argument", "abc"),
        ("by field", "def"),
        ("nobody", ""),
    ]


async def test_each_call_adds_one_line(hub, hub_client, make_instance):
    probe = await make_instance("probe", "p")
    ok = await hub_client.get("/probe/p/say", params={"message": "hi", "email": "camille@example.org"})
    assert ok.status == 200
    bad = await hub_client.get("/probe/p/say", params={"level": "info"})
    assert bad.status == 400
    calls = [r for r in await rows(hub, probe.instance.id) if "endpoint" in r.extra]
    assert [(logging.getLevelName(r.level), r.extra["status"]) for r in calls] == [("DEBUG", 200), ("WARNING", 400)]
    success, refused = calls
    assert success.message.startswith("GET say → 200 in ") and success.message.endswith(" ms")
    assert success.extra["method"] == "GET" and success.extra["endpoint"] == "say"
    assert isinstance(success.extra["duration_ms"], float)
    # Parameter names only: their values may be personal.
    assert success.extra["params"] == ["email", "message"]
    assert "camille" not in repr(success.extra)
    assert refused.extra["err_class"] == "passerelle.envelope.WrongParameter"
    assert refused.message.startswith("GET say → 400 in ")
    assert refused.message.endswith(": " + refused.extra["err_desc"])
    assert "missing parameter 'message'" in refused.extra["err_desc"]


async def test_server_errors_are_error_lines_with_their_description(hub, hub_client, make_instance):
    sample = await make_instance("sample", "s")
    assert (await hub_client.get("/sample/s/crash")).status == 500
    assert (await hub_client.get("/sample/s/refuse?status=503")).status == 503
    assert (await hub_client.get("/sample/s/refuse")).status == 200
    crash, unavailable, business = [r for r in await rows(hub, sample.instance.id)]
    assert (crash.level, crash.extra["err_class"]) == (logging.ERROR, "passerelle.envelope.InternalError")
    assert crash.extra["err_desc"].startswith("internal error (request id ")
    assert "password" not in crash.message  # the exception's text stays in the stdout traceback
    assert (unavailable.level, unavailable.extra["err_desc"]) == (logging.ERROR, "no such family")
    # A business error answers 200: an INFO line, with what went wrong.
    assert (business.level, business.extra["status"]) == (logging.INFO, 200)
    assert business.message.endswith(": no such family")


async def test_the_call_line_names_the_api_user(hub, make_instance):
    """The dispatcher puts the caller on the request (``resourcelogs.CALLER``) once the
    access check passed; the middleware's line reads it."""
    probe = await make_instance("probe", "p")

    async def handler(request: web.Request) -> web.Response:
        request[CALLED_ENDPOINT] = (probe, "say")
        request[CALLER] = "wcs"
        return web.json_response({"err": 0, "data": None})

    app = web.Application(middlewares=[envelope_middleware])
    app.router.add_get("/call", handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/call?NameID=abc&id=3", headers={"X-Request-ID": "req-42"})
        assert response.status == 200
    [line] = await rows(hub, probe.instance.id)
    assert (line.extra["apiuser"], line.name_id, line.request_id) == ("wcs", "abc", "req-42")
    assert line.extra["params"] == ["NameID", "id"]


async def test_a_burst_of_calls_is_written_in_few_statements(hub, hub_client, make_instance, writer, hub_engine):
    probe = await make_instance("probe", "burst")
    await writer.flush(everything=True)
    statements: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO RESOURCE_LOG"):
            statements.append(len(parameters) if executemany else 1)

    event.listen(hub_engine.sync_engine, "before_cursor_execute", count)
    inserts_before = writer.inserts
    try:
        calls = [hub_client.get("/probe/burst/say", params={"message": f"call {i}"}) for i in range(500)]
        responses = await asyncio.gather(*calls)
        assert all(r.status == 200 for r in responses)
        stored = await rows(hub, probe.instance.id)
    finally:
        event.remove(hub_engine.sync_engine, "before_cursor_execute", count)
    assert len(stored) == 1000  # the connector's line and the call's line, for each call
    flushes = writer.inserts - inserts_before
    # One per full batch, plus one a second at most: far fewer than rows, whatever the machine's speed.
    assert flushes <= 50, flushes
    assert len(statements) == flushes  # one statement per flush, never row by row


async def test_a_full_queue_drops_the_oldest_and_counts_them(hub, make_instance, capsys):
    probe = await make_instance("probe", "p")
    writer = ResourceLogWriter(hub.sessionmaker, flush_interval=60, batch_size=1000, max_queued=5)
    writer.drop_warning_interval = 0
    probe._resource_logs = writer
    await writer.start()
    for i in range(8):
        probe.logger.info(f"line {i}")
    assert (writer.queued, writer.dropped) == (5, 3)
    await writer.stop(5)
    assert [r.message for r in await rows(hub, probe.instance.id)] == [f"line {i}" for i in range(3, 8)]
    assert "resource log lines dropped" in capsys.readouterr().out


async def test_stop_writes_what_is_queued(hub, make_instance):
    probe = await make_instance("probe", "p")
    writer = ResourceLogWriter(hub.sessionmaker, flush_interval=60, batch_size=1000)
    probe._resource_logs = writer
    await writer.start()
    probe.logger.warning("about to stop")
    writer.add(probe.instance.id, logging.INFO, "held by a request", request_id="in-flight")
    assert await rows(hub, probe.instance.id) == []  # nothing written yet: the flush is a minute away
    await asyncio.wait_for(writer.stop(5), 10)
    assert [r.message for r in await rows(hub, probe.instance.id)] == ["about to stop", "held by a request"]
    assert writer.inserts == 1
    # A stopped writer keeps nothing more.
    probe.logger.warning("after the stop")
    assert writer.queued == 0


async def test_a_writer_not_started_stores_nothing(hub, make_instance, capsys):
    probe = await make_instance("probe", "p")
    probe._resource_logs = ResourceLogWriter(hub.sessionmaker)
    probe.logger.error("stdout only", code=7)
    assert probe._resource_logs.queued == 0
    out = capsys.readouterr().out
    assert "stdout only" in out and "probe/p" in out


async def test_lines_of_a_deleted_instance_do_not_lose_the_others(hub, hub_client, make_instance, writer):
    kept = await make_instance("probe", "kept")
    gone = await make_instance("probe", "gone")
    kept.logger.info("kept line")
    gone.logger.info("gone line")
    response = await hub_client.delete("/manage/api/instances/probe/gone/", headers=AUTH)
    assert response.status == 200
    kept.logger.info("another kept line")
    assert [r.message for r in await rows(hub)] == ["kept line", "another kept line"]


async def insert_rows(hub: Hub, instance_id: int, ages: list[tuple[int, str]]) -> None:
    now = utcnow()
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(
            insert(ResourceLog),
            [
                {"instance_id": instance_id, "timestamp": now - timedelta(days=days), "level": 20, "message": message}
                for days, message in ages
            ],
        )


async def test_a_real_call_names_its_api_user(hub, hub_client, make_instance):
    sample = await make_instance("sample", "named")
    response = await hub_client.get("/sample/named/hello?name=Ada&NameID=abc")
    assert response.status == 200
    [line] = await rows(hub, sample.instance.id)
    assert (line.extra["apiuser"], line.extra["status"], line.name_id) == (OPEN_USER, 200, "abc")


async def test_at_info_successes_are_not_stored_but_errors_are(hub, hub_client, make_instance, hub_settings):
    hub_settings.resource_log_level = "INFO"
    sample = await make_instance("sample", "quiet")
    assert (await hub_client.get("/sample/quiet/hello?name=Ada")).status == 200
    assert (await hub_client.get("/sample/quiet/refuse")).status == 200  # a business error, err 1
    assert (await hub_client.get("/sample/quiet/hello?nope=1")).status == 400
    lines = await rows(hub, sample.instance.id)
    assert [(logging.getLevelName(line.level), line.extra["endpoint"], line.extra["status"]) for line in lines] == [
        ("INFO", "refuse", 200),
        ("WARNING", "hello", 400),
    ]
