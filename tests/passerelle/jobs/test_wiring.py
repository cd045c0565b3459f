"""`serve` runs queued and periodic jobs in-process by default; the settings turn them off."""

from __future__ import annotations

from dataclasses import replace

import pytest

from passerelle.app import build_services
from passerelle.jobs import JobRunner, PeriodicService
from passerelle.testing import ADMIN_TOKEN
from tests.passerelle.jobs.support import wait_for_state


@pytest.fixture
def hub_settings(hub_settings):
    return hub_settings.model_copy(update={"run_jobs": True, "run_periodic_jobs": True})


async def test_serve_runs_queued_jobs_in_process(hub, chores, hub_client, tmp_path):
    assert [type(service) for service in hub.services if service.name in ("jobs", "periodic-jobs")] == [
        PeriodicService,
        JobRunner,
    ]
    log = tmp_path / "effects.log"
    job_id = await chores.add_job("append", {"path": str(log), "line": "served"})
    await wait_for_state(hub.sessionmaker, job_id, "done")
    assert log.read_text() == "served\n"
    [runner] = [service for service in hub.services if isinstance(service, JobRunner)]
    await runner.refresh_counts()
    response = await hub_client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert 'passerelle_jobs{state="done"} 1.0' in await response.text()


async def test_the_settings_turn_the_job_services_off(hub):
    def names(**settings: bool) -> list[str]:
        return [s.name for s in build_services(replace(hub, settings=hub.settings.model_copy(update=settings)))]

    assert {"jobs", "periodic-jobs"} <= set(names())
    assert "jobs" not in names(run_jobs=False)
    assert "periodic-jobs" not in names(run_periodic_jobs=False)
