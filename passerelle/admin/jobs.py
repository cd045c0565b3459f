"""Admin API: queued jobs and periodic jobs (:mod:`passerelle.jobs`).

- ``GET /manage/api/jobs/``: queued jobs, newest first; filters ``state``, ``type``,
  ``slug``, ``method``, ``natural_id``; pages with ``limit`` (default 100, at most
  1000) and ``offset``; ``count`` says how many match in all;
- ``GET /manage/api/jobs/<id>/``: one job, with its params and last error;
- ``POST /manage/api/jobs/<id>/retry/``: a failed or cancelled job runs again now,
  with all its attempts;
- ``POST /manage/api/jobs/<id>/cancel/``: a pending job will not run; a running one
  is stopped by its runner at its next lease renewal (within a third of
  ``JOB_LEASE``), what it already did staying done;
- ``GET /manage/api/periodic/``: every periodic job of the live instances, with its
  interval and the last run seen by the cluster-wide lock (start, end, error, process).

A job's params may hold personal data: only administrators see them. Its recorded
error is already redacted.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from passerelle import locks
from passerelle.envelope import NotFound, RequestError, WrongParameter, json_response
from passerelle.hub import hub_of
from passerelle.jobs import queue
from passerelle.jobs.periodic import LOCK_PREFIX, lock_name
from passerelle.management import as_utc
from passerelle.storage.models import Job

MAX_LIMIT = 1000


def ok(data: Any, **extra: Any) -> web.Response:
    # passerelle.admin.api's ok(), which cannot be imported here: that module imports this one.
    return json_response({"err": 0, "data": data, **extra})


def job_view(job: Job, type_slug: str, slug: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": type_slug,
        "slug": slug,
        "method": job.method,
        "params": job.params,
        "natural_id": job.natural_id,
        "state": job.state,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "postponements": job.postponements,
        "run_after": as_utc(job.run_after),
        "locked_by": job.locked_by,
        "locked_until": as_utc(job.locked_until),
        "last_error": job.last_error,
        "created": as_utc(job.created),
        "updated": as_utc(job.updated),
        "done": as_utc(job.done),
    }


def int_param(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WrongParameter(f"'{name}' must be an integer, not {raw!r}") from None
    if value < 0 or (maximum is not None and value > maximum):
        raise WrongParameter(f"'{name}' must be between 0 and {maximum}" if maximum else f"'{name}' must be >= 0")
    return value


def job_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise NotFound(f"no job {raw}")
    return int(raw)


async def one_job(request: web.Request, identifier: int) -> web.Response:
    row = await queue.get_job(hub_of(request).sessionmaker, identifier)
    if row is None:
        raise NotFound(f"no job {identifier}")
    return ok(job_view(*row))


async def list_jobs(request: web.Request) -> web.Response:
    query = request.query
    state = query.get("state") or None
    if state is not None and state not in queue.STATES:
        raise WrongParameter(f"unknown state {state!r}: use one of {', '.join(queue.STATES)}")
    rows, total = await queue.list_jobs(
        hub_of(request).sessionmaker,
        state=state,
        type_slug=query.get("type") or None,
        slug=query.get("slug") or None,
        method=query.get("method") or None,
        natural_id=query.get("natural_id") or None,
        limit=int_param(request, "limit", 100, MAX_LIMIT),
        offset=int_param(request, "offset", 0),
    )
    return ok([job_view(*row) for row in rows], count=total)


async def get_job(request: web.Request) -> web.Response:
    return await one_job(request, job_id(request))


async def retry_job(request: web.Request) -> web.Response:
    return await _act(request, queue.retry_job)


async def cancel_job(request: web.Request) -> web.Response:
    return await _act(request, queue.cancel_job)


async def _act(request: web.Request, action: Any) -> web.Response:
    identifier = job_id(request)
    try:
        await action(hub_of(request).sessionmaker, identifier)
    except LookupError:
        raise NotFound(f"no job {identifier}") from None
    except queue.JobStateError as exc:
        raise RequestError(str(exc), http_status=409) from None
    return await one_job(request, identifier)


async def list_periodic(request: web.Request) -> web.Response:
    hub = hub_of(request)
    states = {state.name: state for state in await locks.lock_states(hub.sessionmaker, prefix=LOCK_PREFIX)}
    found = []
    for connector in hub.registry.all():
        for job in connector.periodic_jobs:
            name = lock_name(connector, job)
            state = states.get(name)
            found.append(
                {
                    "name": name,
                    "type": connector.instance.type,
                    "slug": connector.instance.slug,
                    "method": job.method_name,
                    "seconds": job.seconds,
                    "description": job.description,
                    "last_started": as_utc(state.last_started) if state else None,
                    "last_finished": as_utc(state.last_finished) if state else None,
                    "last_error": state.last_error if state else "",
                    "owner": state.owner if state else "",
                    "locked_until": as_utc(state.locked_until) if state else None,
                }
            )
    return ok(found)


ROUTES = [
    ("GET", "/jobs/", list_jobs),
    ("GET", "/jobs/{id}/", get_job),
    ("POST", "/jobs/{id}/retry/", retry_job),
    ("POST", "/jobs/{id}/cancel/", cancel_job),
    ("GET", "/periodic/", list_periodic),
]
