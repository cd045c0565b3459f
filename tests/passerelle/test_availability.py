"""Availability checks (passerelle.availability): state and history, notifications after
their delays (log line and a webhook received by a real local server), deadlines, one
check per period across processes, and what /health, /metrics and the instance page show."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select, update

from passerelle import Connector, Context, Param, endpoint
from passerelle.availability import AvailabilityService, current_states
from passerelle.hub import HUB, Hub
from passerelle.instances import InstanceRegistry
from passerelle.storage import make_engine, make_sessionmaker
from passerelle.storage.models import Availability, AvailabilityEvent, utcnow

Behaviour = Callable[[Connector], Awaitable[None]]
# What each probe instance's check does, by slug: nothing (up), raise (down), sleep…
BEHAVIOUR: dict[str, Behaviour] = {}
CHECKS: dict[str, int] = {}


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr | None = Field(None, description="A secret a careless check could echo.")


class Probe(Connector):
    """A connector whose check the test decides; it also logs through its resource logger."""

    slug = "probe"
    title = "Probe"
    description = "Checked by the availability tests."
    Config = ProbeConfig

    async def check_status(self) -> None:
        CHECKS[self.instance.slug] = CHECKS.get(self.instance.slug, 0) + 1
        behaviour = BEHAVIOUR.get(self.instance.slug)
        if behaviour is not None:
            await behaviour(self)

    @endpoint(description="Logs a line at a level, with fields.")
    async def say(
        self,
        ctx: Context,
        message: Annotated[str, Param("The message", example="hello")],
        level: Annotated[str, Param("Level", example="info")] = "info",
        **fields: str,
    ) -> str:
        getattr(self.logger, level)(message, **fields)
        return "said"


def up() -> Behaviour:
    async def behave(connector: Connector) -> None:
        return None

    return behave


def down(message: str = "connection refused") -> Behaviour:
    async def behave(connector: Connector) -> None:
        raise ConnectionError(message)

    return behave


def slow(seconds: float) -> Behaviour:
    async def behave(connector: Connector) -> None:
        await asyncio.sleep(seconds)

    return behave


@pytest.fixture(autouse=True)
def _clean_behaviours():
    BEHAVIOUR.clear()
    CHECKS.clear()
    yield
    BEHAVIOUR.clear()
    CHECKS.clear()


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "probe": Probe}


@pytest.fixture
def hub(hub_app, hub_client) -> Hub:
    return hub_app[HUB]


@pytest.fixture
async def webhook(fake_upstream):
    fake_upstream.reply("POST", "/hook", json={"ok": True})
    return fake_upstream


def service(hub: Hub, **settings: object) -> AvailabilityService:
    return AvailabilityService(hub, settings=hub.settings.model_copy(update=settings), timeout=0.5)


def posted(upstream) -> list[dict]:
    return [json.loads(r.body) for r in upstream.requests if r.path == "/hook"]


async def history(hub: Hub, connector: Connector) -> list[tuple[str, str]]:
    async with hub.sessionmaker() as session:
        events = await session.scalars(
            select(AvailabilityEvent)
            .where(AvailabilityEvent.instance_id == connector.instance.id)
            .order_by(AvailabilityEvent.id)
        )
        return [(event.status, event.message) for event in events]


async def age_state(hub: Hub, connector: Connector, seconds: float) -> None:
    """Move the current state's start back in time, as if it had lasted ``seconds``."""
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(
            update(Availability)
            .where(Availability.instance_id == connector.instance.id)
            .values(since=utcnow() - timedelta(seconds=seconds))
        )


async def test_up_down_up_keeps_the_history_and_notifies_each_change(hub, make_instance, webhook, capsys):
    probe = await make_instance("probe", "ban", title="BAN")
    checker = service(hub, availability_webhook_url=f"{webhook.url}/hook")

    state = await checker.check(probe)
    assert (state.status, state.message, state.notified_status) == ("up", "", "up")
    assert posted(webhook) == []  # a new instance found up is not news

    BEHAVIOUR["ban"] = down("connection refused by 10.0.0.7")
    state = await checker.check(probe)
    assert state.status == "down"
    assert state.message == "ConnectionError: connection refused by 10.0.0.7"
    first_down = state.since
    [payload] = posted(webhook)
    assert payload == {
        "event": "availability",
        "type": "probe",
        "slug": "ban",
        "title": "BAN",
        "instance": "probe/ban",
        "status": "down",
        "previous_status": "up",
        "since": first_down.isoformat(),
        "message": "ConnectionError: connection refused by 10.0.0.7",
    }
    assert "instance unavailable" in capsys.readouterr().out

    # Still down: the state is kept (not its start), no new event, no new notification.
    BEHAVIOUR["ban"] = down("timeout")
    state = await checker.check(probe)
    assert (state.status, state.since, state.message) == ("down", first_down, "ConnectionError: timeout")
    assert len(posted(webhook)) == 1

    BEHAVIOUR["ban"] = up()
    state = await checker.check(probe)
    assert (state.status, state.notified_status) == ("up", "up")
    assert [p["status"] for p in posted(webhook)] == ["down", "up"]
    assert posted(webhook)[1]["previous_status"] == "down"
    assert "instance available again" in capsys.readouterr().out

    assert await history(hub, probe) == [
        ("up", ""),
        ("down", "ConnectionError: connection refused by 10.0.0.7"),
        ("up", ""),
    ]


async def test_a_change_is_notified_only_once_it_has_lasted_its_delay(hub, make_instance, webhook, capsys):
    probe = await make_instance("probe", "sig")
    checker = service(
        hub,
        availability_webhook_url=f"{webhook.url}/hook",
        availability_down_delay=600,
        availability_up_delay=600,
    )
    await checker.check(probe)
    BEHAVIOUR["sig"] = down()
    state = await checker.check(probe)
    assert (state.status, state.notified_status) == ("down", "up")
    state = await checker.check(probe)
    assert (state.status, state.notified_status) == ("down", "up")
    assert posted(webhook) == []
    assert "instance unavailable" not in capsys.readouterr().out

    # Ten minutes later it is still down: now it is news.
    await age_state(hub, probe, 601)
    state = await checker.check(probe)
    assert state.notified_status == "down"
    assert [p["status"] for p in posted(webhook)] == ["down"]

    # Back up, not for long enough yet.
    BEHAVIOUR["sig"] = up()
    state = await checker.check(probe)
    assert (state.status, state.notified_status) == ("up", "down")
    await age_state(hub, probe, 601)
    state = await checker.check(probe)
    assert state.notified_status == "up"
    assert [p["status"] for p in posted(webhook)] == ["down", "up"]


async def test_a_flap_shorter_than_the_delay_is_never_notified(hub, make_instance, webhook):
    probe = await make_instance("probe", "flap")
    checker = service(hub, availability_webhook_url=f"{webhook.url}/hook", availability_down_delay=600)
    await checker.check(probe)
    BEHAVIOUR["flap"] = down()
    await checker.check(probe)
    BEHAVIOUR["flap"] = up()
    state = await checker.check(probe)
    assert (state.status, state.notified_status) == ("up", "up")
    assert posted(webhook) == []
    assert [status for status, _ in await history(hub, probe)] == ["up", "down", "up"]


async def test_a_new_instance_found_down_is_notified(hub, make_instance, webhook):
    probe = await make_instance("probe", "new")
    BEHAVIOUR["new"] = down()
    await service(hub, availability_webhook_url=f"{webhook.url}/hook").check(probe)
    [payload] = posted(webhook)
    assert (payload["status"], payload["previous_status"]) == ("down", None)


async def test_a_check_past_its_deadline_is_down_and_does_not_hang(hub, make_instance):
    probe = await make_instance("probe", "slow")
    BEHAVIOUR["slow"] = slow(30)
    checker = AvailabilityService(hub, timeout=0.2)
    started = time.monotonic()
    state = await checker.check(probe)
    assert time.monotonic() - started < 5
    assert (state.status, state.message) == ("down", "the check did not finish in 0.2 s")


async def test_the_deadline_follows_the_interval_up_to_25_seconds(hub):
    assert AvailabilityService(hub, interval=12).timeout == 12
    assert AvailabilityService(hub).timeout == 25  # the default interval is 300 s


async def test_a_failure_message_holds_no_secret_nor_personal_data(hub, make_instance):
    probe = await make_instance("probe", "leaky", config={"password": "s3cr3t-Pw-91"})

    async def behave(connector: Connector) -> None:
        raise PermissionError(
            f"login of camille.dupont@example.org refused with {connector.config.password.get_secret_value()} "
            "at https://admin:hunter2@app.example.org/login"
        )

    BEHAVIOUR["leaky"] = behave
    state = await AvailabilityService(hub, timeout=0.5).check(probe)
    assert state.status == "down"
    assert state.message.startswith("PermissionError: login of [email] refused with [secret] at https://")
    for value in ("camille.dupont", "s3cr3t-Pw-91", "hunter2"):
        assert value not in state.message
    assert "Traceback" not in state.message


async def test_a_failing_webhook_is_logged_and_the_check_goes_on(hub, make_instance, fake_upstream, capsys):
    fake_upstream.reply("POST", "/broken", status=404, json={"error": "no"})
    probe = await make_instance("probe", "w")
    BEHAVIOUR["w"] = down()
    checker = service(hub, availability_webhook_url=f"{fake_upstream.url}/broken")
    state = await checker.check(probe)
    await checker.close()
    assert (state.status, state.notified_status) == ("down", "down")
    assert "availability webhook failed" in capsys.readouterr().out
    # Notified once: the next check does not try again.
    await AvailabilityService(hub, settings=checker.settings, timeout=0.5).check(probe)
    assert len([r for r in fake_upstream.requests if r.path == "/broken"]) == 1


async def test_each_instance_is_checked_once_per_period_across_processes(hub, make_instance, hub_settings):
    for slug in ("a", "b", "c"):
        await make_instance("probe", slug)
    # A second hub process: its own engine, sessions and registry, the same database.
    engine = make_engine(hub_settings.resolved_database_url)
    sessionmaker = make_sessionmaker(engine)
    other = Hub(hub_settings, engine, sessionmaker, InstanceRegistry(hub_settings, hub.types, sessionmaker))
    await other.registry.reload(force=True)
    try:
        first, second = AvailabilityService(hub, timeout=0.5), AvailabilityService(other, timeout=0.5)
        counts = await asyncio.gather(first.run_once(), second.run_once())
        assert sum(counts) == 3
        assert CHECKS == {"a": 1, "b": 1, "c": 1}
        # Within the period, nobody checks again.
        assert await asyncio.gather(first.run_once(), second.run_once()) == [0, 0]
        assert CHECKS == {"a": 1, "b": 1, "c": 1}
        # Both processes know every state, whoever checked.
        assert first.known == second.known == {("probe", s): "up" for s in ("a", "b", "c")}
    finally:
        await other.registry.close()
        await engine.dispose()


async def test_the_service_checks_periodically_and_stops(hub, make_instance):
    await make_instance("probe", "tick")
    checker = AvailabilityService(hub, interval=0.05, timeout=0.5)
    await checker.start()
    try:
        deadline = time.monotonic() + 5
        while CHECKS.get("tick", 0) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await asyncio.wait_for(checker.stop(1), 5)
    assert CHECKS["tick"] >= 3
    checks = CHECKS["tick"]
    await asyncio.sleep(0.15)
    assert CHECKS["tick"] == checks


async def test_health_sums_availability_up_without_changing_its_status(hub, hub_client, make_instance):
    ok, broken, _ = [await make_instance("probe", slug, title=slug.upper()) for slug in ("ok", "broken", "never")]
    BEHAVIOUR["broken"] = down()
    checker = AvailabilityService(hub, timeout=0.5)
    await checker.check(ok)
    state = await checker.check(broken)
    response = await hub_client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["availability"] == {
        "up": 1,
        "down": 1,
        "unknown": 1,
        "down_instances": [{"type": "probe", "slug": "broken", "title": "BROKEN", "since": state.since.isoformat()}],
    }


async def test_metrics_show_the_last_known_state(hub, hub_client, make_instance):
    await make_instance("probe", "m-up")
    await make_instance("probe", "m-down")
    BEHAVIOUR["m-down"] = down()
    running = next(s for s in hub.services if isinstance(s, AvailabilityService))
    await running.run_once()
    text = await (await hub_client.get("/metrics")).text()
    assert 'passerelle_instance_up{instance="m-up",type="probe"} 1.0' in text
    assert 'passerelle_instance_up{instance="m-down",type="probe"} 0.0' in text


async def test_the_instance_page_shows_the_state_and_last_changes(hub, hub_client, make_instance):
    probe = await make_instance("probe", "page")
    payload = await (await hub_client.get("/probe/page/")).json()
    assert payload["data"]["availability"] == {
        "status": "unknown",
        "since": None,
        "last_check": None,
        "message": "",
        "events": [],
    }
    checker = AvailabilityService(hub, timeout=0.5)
    await checker.check(probe)
    BEHAVIOUR["page"] = down("no route to host")
    state = await checker.check(probe)

    availability = (await (await hub_client.get("/probe/page/")).json())["data"]["availability"]
    assert availability["status"] == "down"
    assert availability["since"] == state.since.isoformat()
    assert availability["last_check"] == state.last_check.isoformat()
    assert availability["message"] == "ConnectionError: no route to host"
    assert [(e["status"], e["message"]) for e in availability["events"]] == [
        ("down", "ConnectionError: no route to host"),
        ("up", ""),
    ]

    html = await (await hub_client.get("/probe/page/", headers={"Accept": "text/html"})).text()
    assert '<span class="status status-down">down</span>' in html
    assert "ConnectionError: no route to host" in html
    assert "Last changes" in html


async def test_states_are_read_cluster_wide(hub, make_instance):
    probe = await make_instance("probe", "read")
    await AvailabilityService(hub, timeout=0.5).check(probe)
    states = await current_states(hub.sessionmaker)
    assert states[("probe", "read")].status == "up"


async def test_two_first_checks_at_once_store_one_state(hub, make_instance):
    probe = await make_instance("probe", "race")
    BEHAVIOUR["race"] = slow(0.05)
    first, second = AvailabilityService(hub, timeout=0.5), AvailabilityService(hub, timeout=0.5)
    states = await asyncio.gather(first.check(probe), second.check(probe))
    assert [state.status for state in states] == ["up", "up"]
    assert await history(hub, probe) == [("up", "")]
