"""Admin API: queued jobs (list, show, retry, cancel) and periodic jobs."""

from __future__ import annotations

import pytest

from passerelle.connectors import Connector
from passerelle.hub import HUB
from passerelle.jobs import run_periodic
from passerelle.testing import ADMIN_TOKEN
from tests.passerelle.jobs.chores import Chores
from tests.passerelle.jobs.support import set_job

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def hub_connector_types(hub_connector_types: dict[str, type[Connector]]) -> dict[str, type[Connector]]:
    return {**hub_connector_types, "chores": Chores}


@pytest.fixture
def hub_settings(hub_settings):
    # Nothing runs the jobs: their states are the tests' to set.
    return hub_settings.model_copy(update={"run_jobs": False, "run_periodic_jobs": False})


@pytest.fixture
def sessionmaker(hub_app):
    return hub_app[HUB].sessionmaker


async def admin(client, method, path, **kwargs):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = await client.request(method, f"/manage/api{path}", headers=headers, **kwargs)
    return response.status, await response.json()


@pytest.fixture
async def jobs(make_instance) -> dict[str, int]:
    home = await make_instance("chores", "home")
    office = await make_instance("chores", "office")
    return {
        "first": await home.add_job("flaky", {"key": "a", "failures": 0}, natural_id="invoice-1"),
        "second": await home.add_job("postpone", {"key": "b", "times": 0, "after": 1}),
        "third": await office.add_job("flaky", {"key": "c", "failures": 0}, natural_id="invoice-1"),
    }


async def test_jobs_need_an_admin_token(hub_client):
    response = await hub_client.get("/manage/api/jobs/")
    assert response.status == 401


async def test_jobs_are_listed_newest_first_with_filters_and_pages(hub_client, jobs):
    status, payload = await admin(hub_client, "GET", "/jobs/")
    assert status == 200
    assert [job["id"] for job in payload["data"]] == [jobs["third"], jobs["second"], jobs["first"]]
    assert payload["count"] == 3
    first = payload["data"][2]
    assert first["type"] == "chores" and first["slug"] == "home" and first["method"] == "flaky"
    assert first["params"] == {"key": "a", "failures": 0}
    assert (first["state"], first["attempts"], first["natural_id"]) == ("pending", 0, "invoice-1")
    assert first["run_after"].endswith("+00:00")

    async def ids(query: str) -> list[int]:
        status, payload = await admin(hub_client, "GET", f"/jobs/?{query}")
        assert status == 200, payload
        return [job["id"] for job in payload["data"]]

    assert await ids("slug=office") == [jobs["third"]]
    assert await ids("type=chores&slug=home") == [jobs["second"], jobs["first"]]
    assert await ids("method=postpone") == [jobs["second"]]
    assert await ids("natural_id=invoice-1") == [jobs["third"], jobs["first"]]
    assert await ids("state=failed") == []
    assert await ids("limit=1&offset=1") == [jobs["second"]]
    status, payload = await admin(hub_client, "GET", "/jobs/?limit=1")
    assert payload["count"] == 3 and len(payload["data"]) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("state=lost", "unknown state 'lost'"),
        ("limit=many", "'limit' must be an integer"),
        ("limit=5000", "'limit' must be between 0 and 1000"),
        ("offset=-1", "'offset' must be >= 0"),
    ],
)
async def test_wrong_list_parameters_are_refused(hub_client, query, message):
    status, payload = await admin(hub_client, "GET", f"/jobs/?{query}")
    assert status == 400
    assert message in payload["err_desc"]


async def test_one_job(hub_client, jobs):
    status, payload = await admin(hub_client, "GET", f"/jobs/{jobs['second']}/")
    assert status == 200
    assert payload["data"]["id"] == jobs["second"] and payload["data"]["method"] == "postpone"
    for path in ("/jobs/999999/", "/jobs/abc/", "/jobs/999999/retry/"):
        method = "POST" if path.endswith("retry/") else "GET"
        status, payload = await admin(hub_client, method, path)
        assert status == 404, path
        assert payload["err_class"] == "passerelle.envelope.NotFound"


async def test_a_failed_job_is_retried_with_all_its_attempts(hub_client, sessionmaker, jobs):
    await set_job(sessionmaker, jobs["first"], state="failed", attempts=5, last_error="RuntimeError: no")
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['first']}/retry/")
    assert status == 200
    job = payload["data"]
    assert (job["state"], job["attempts"], job["postponements"]) == ("pending", 0, 0)
    assert job["last_error"] == "RuntimeError: no"  # kept, for the record


async def test_only_failed_or_cancelled_jobs_can_be_retried(hub_client, sessionmaker, jobs):
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['first']}/retry/")
    assert status == 409
    assert payload["err_desc"] == f"job {jobs['first']} is pending: only failed or cancelled jobs can be retried"
    await set_job(sessionmaker, jobs["second"], state="done")
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['second']}/retry/")
    assert status == 409


async def test_a_retry_never_makes_two_active_jobs_of_one_natural_id(hub_client, make_instance, sessionmaker, jobs):
    home = await make_instance("chores", "home")
    await set_job(sessionmaker, jobs["first"], state="failed")
    newer = await home.add_job("flaky", {"key": "a", "failures": 0}, natural_id="invoice-1")
    assert newer != jobs["first"]
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['first']}/retry/")
    assert status == 409
    assert "same method and natural_id is pending or running" in payload["err_desc"]


async def test_cancel_a_pending_or_running_job(hub_client, sessionmaker, jobs):
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['first']}/cancel/")
    assert status == 200
    assert payload["data"]["state"] == "cancelled"
    await set_job(sessionmaker, jobs["second"], state="running", locked_by="elsewhere")
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['second']}/cancel/")
    assert status == 200
    assert payload["data"]["state"] == "cancelled"
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['second']}/cancel/")
    assert status == 409
    assert payload["err_desc"] == f"job {jobs['second']} is cancelled: only pending or running jobs can be cancelled"
    # A cancelled job may be retried.
    status, payload = await admin(hub_client, "POST", f"/jobs/{jobs['first']}/retry/")
    assert status == 200 and payload["data"]["state"] == "pending"


async def test_periodic_jobs_show_their_last_run(hub_app, hub_client, make_instance):
    chores = await make_instance("chores", "home")
    status, payload = await admin(hub_client, "GET", "/periodic/")
    assert status == 200
    [tick] = [job for job in payload["data"] if job["type"] == "chores"]
    assert tick["name"] == "periodic:chores/home/tick"
    assert (tick["method"], tick["seconds"], tick["description"]) == ("tick", 1, "Counts its runs.")
    assert tick["last_started"] is None and tick["owner"] == ""

    await run_periodic(chores, Chores.periodic_jobs[0], hub_app[HUB].sessionmaker)
    status, payload = await admin(hub_client, "GET", "/periodic/")
    [tick] = [job for job in payload["data"] if job["type"] == "chores"]
    assert tick["last_started"] is not None and tick["last_finished"] is not None
    assert tick["last_error"] == "" and tick["owner"]
    # Every live instance's periodic jobs are listed, run or not.
    await make_instance("sample", "demo")
    status, payload = await admin(hub_client, "GET", "/periodic/")
    names = {job["name"]: job for job in payload["data"]}
    assert set(names) == {"periodic:chores/home/tick", "periodic:sample/demo/refresh"}
    assert names["periodic:sample/demo/refresh"]["last_started"] is None
