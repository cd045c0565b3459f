"""The in-memory registry: no query per request, refreshed when another process changes things."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from passerelle.app import create_app
from passerelle.hub import HUB
from passerelle.management import Manager
from passerelle.requestid import current_request_id
from tests.passerelle.sample import Sample


async def test_requests_do_not_query_the_database(hub_client, hub_engine, make_instance):
    await make_instance("sample", "demo")
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append((current_request_id(), statement))

    event.listen(hub_engine.sync_engine, "before_cursor_execute", record)
    try:
        for _ in range(5):
            assert (await hub_client.get("/sample/demo/hello?name=A")).status == 200
    finally:
        event.remove(hub_engine.sync_engine, "before_cursor_execute", record)
    # Background services (version check, job runner, purges…) may query meanwhile; the
    # requests themselves never do (the request id is set while one is being served).
    assert [statement for rid, statement in statements if rid is not None] == []


async def test_a_change_made_by_another_process_is_picked_up(hub_app, hub_client, hub_settings, hub_engine):
    # A second application on the same database stands for a second hub process.
    other = create_app(hub_settings, types={"sample": Sample}, engine=hub_engine)
    other_hub = other[HUB]
    await other_hub.registry.reload(force=True)
    try:
        manager = Manager(other_hub.sessionmaker, other_hub.types)
        await manager.import_document(
            {
                "apiusers": [{"username": "all"}],
                "instances": [{"type": "sample", "slug": "late", "title": "Late", "access": [{"apiuser": "all"}]}],
            }
        )
        # The first process has not been told; it polls every 0.2 s in tests.
        for _ in range(50):
            response = await hub_client.get("/sample/late/ping")
            if response.status == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200

        await manager.import_document({"instances": [{"type": "sample", "slug": "late", "title": "Renamed"}]})
        for _ in range(50):
            if hub_app[HUB].registry.lookup("sample", "late").instance.title == "Renamed":
                break
            await asyncio.sleep(0.1)
        assert hub_app[HUB].registry.lookup("sample", "late").instance.title == "Renamed"
    finally:
        await other_hub.registry.close()


async def test_only_changed_instances_are_rebuilt(hub_app, make_instance):
    first = await make_instance("sample", "one")
    second = await make_instance("sample", "two")
    await make_instance("sample", "two", config={"greeting": "hey"})
    registry = hub_app[HUB].registry
    assert registry.lookup("sample", "one") is first
    assert registry.lookup("sample", "two") is not second
    assert registry.lookup("sample", "two").config.greeting == "hey"


async def test_instance_with_invalid_stored_config_is_reported(hub_app, hub_client, make_instance):
    from sqlalchemy import update

    from passerelle.storage.database import bump_config_version
    from passerelle.storage.models import ConnectorInstance

    await make_instance("sample", "demo")
    hub = hub_app[HUB]
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(update(ConnectorInstance).values(config={"limit": -3}))
        await bump_config_version(session)
    await hub.registry.reload()
    response = await hub_client.get("/sample/demo/ping")
    assert response.status == 503
    payload = await response.json()
    assert "configuration is invalid" in payload["err_desc"]
    assert "limit" in hub.registry.broken[("sample", "demo")]


async def test_health_reports_database(hub_client, make_instance):
    await make_instance("sample", "demo")
    response = await hub_client.get("/health")
    assert response.status == 200
    payload = await response.json()
    assert payload["status"] == "ok"
    assert payload["database"]["status"] == "ok"
    assert payload["instances"] == 1
