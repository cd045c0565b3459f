from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from passerelle.connectors import Connector
from passerelle.hub import HUB, Hub
from passerelle.jobs import JobRunner
from passerelle.settings import Settings
from tests.passerelle.jobs.chores import Chores


@pytest.fixture
def hub_connector_types(hub_connector_types: dict[str, type[Connector]]) -> dict[str, type[Connector]]:
    return {**hub_connector_types, "chores": Chores}


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    # The tests start their own runners, with short leases; the app's would compete with them.
    return hub_settings.model_copy(update={"run_jobs": False, "run_periodic_jobs": False})


@pytest.fixture(autouse=True)
def _forget_calls() -> None:
    Chores.calls.clear()


@pytest.fixture
async def hub(hub_app, hub_client) -> Hub:
    return hub_app[HUB]


@pytest.fixture
async def chores(hub: Hub, make_instance) -> Connector:
    return await make_instance("chores", "home")


@pytest.fixture
async def make_runner(hub: Hub) -> AsyncIterator[Callable[..., JobRunner]]:
    """``make_runner(**options)``: a runner of the test's hub (not started), stopped at the end."""
    runners: list[JobRunner] = []

    def make(**options: float) -> JobRunner:
        short = {"lease": 1.0, "poll_interval": 0.05, "backoff_base": 0.05, "backoff_cap": 0.2, **options}
        runner = JobRunner(hub.settings, hub.sessionmaker, hub.registry, **short)  # type: ignore[arg-type]
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.stop(0)
