"""create_app(settings) -> aiohttp Application, and what `serve` and `passerelle worker` share:
the hub (build_hub), its background services (build_services) and their lifecycle
(running). Wiring only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from passerelle import admin, docpage, metrics, openapi, pages, records, resourcelogs
from passerelle.auth.access import ACCESS, AccessChecker
from passerelle.availability import AvailabilityService
from passerelle.connectors import Connector
from passerelle.dispatch import EndpointHandler
from passerelle.hub import HUB, Hub, Service
from passerelle.instances import InstanceRegistry, watching
from passerelle.jobs import JobRunner, PeriodicService
from passerelle.jobs.queue import purge_finished
from passerelle.middleware import envelope_middleware
from passerelle.plugins import discover_types
from passerelle.retention import RetentionPurge
from passerelle.settings import Settings
from passerelle.storage import make_engine, make_sessionmaker
from passerelle.storage.migrate import head_revision, is_up_to_date, upgrade
from passerelle.threads import ThreadPoolService


class DatabaseNotMigrated(RuntimeError):
    """The database schema is older than this version of the hub."""


def create_app(
    settings: Settings,
    *,
    types: dict[str, type[Connector]] | None = None,
    engine: AsyncEngine | None = None,
) -> web.Application:
    """Build the application; the database is checked and instances loaded on startup."""
    hub = build_hub(settings, types=types, engine=engine)
    sessionmaker = hub.sessionmaker

    app = web.Application(middlewares=[envelope_middleware], client_max_size=settings.max_body_size)
    app[HUB] = hub
    app.cleanup_ctx.append(_lifecycle)

    app.router.add_get("/", pages.index, name="index")
    app.router.add_get("/health", pages.health, name="health")
    app.router.add_get("/openapi.json", openapi.handler, name="openapi")
    app.router.add_get("/metrics", metrics.handler, name="metrics")
    admin.setup_routes(app)
    app.router.add_get("/{type}/{slug}/", docpage.handler, name="instance-doc")
    app.router.add_get("/{type}/{slug}", docpage.redirect)
    app[ACCESS] = access = AccessChecker(settings, sessionmaker)
    endpoints = EndpointHandler(hub.registry, access, hub.cache)
    app.router.add_route("*", "/{type}/{slug}/{endpoint}{rest:.*}", endpoints.handle, name="endpoint")
    return app


def build_hub(
    settings: Settings,
    *,
    types: dict[str, type[Connector]] | None = None,
    engine: AsyncEngine | None = None,
) -> Hub:
    """The hub's shared state; its registry is empty until :func:`running` loads it."""
    if types is None:
        types = discover_types(settings.load_plugins)
    owns_engine = engine is None
    engine = engine or make_engine(settings.resolved_database_url)
    sessionmaker = make_sessionmaker(engine)
    return Hub(settings, engine, sessionmaker, InstanceRegistry(settings, types, sessionmaker), owns_engine)


def build_services(hub: Hub) -> list[Service]:
    """The background services of this process, in start order."""
    # The thread pool first: stopped last, once nothing else may hand it work.
    services: list[Service] = [ThreadPoolService(hub.settings)]
    # The resource log writer next: stopped after everything that may log.
    services.append(hub.registry.resource_logs)
    if hub.settings.run_periodic_jobs:
        services.append(PeriodicService(hub.registry, hub.sessionmaker))
        services.append(AvailabilityService(hub))
        purgers = {"resource logs": resourcelogs.purge, "jobs": purge_finished, "records": records.purge_expired}
        services.append(RetentionPurge(hub.sessionmaker, hub.settings, purgers))
    if hub.settings.run_jobs:
        services.append(JobRunner(hub.settings, hub.sessionmaker, hub.registry))
    return services


@contextlib.asynccontextmanager
async def running(hub: Hub) -> AsyncIterator[Hub]:
    """Check the schema, load the instances, start the services and follow changes of the
    configuration; at exit, stop the services in reverse order (each given
    ``SHUTDOWN_GRACE`` seconds) and close the instances. ``serve`` and ``passerelle worker``
    both run in it."""
    settings = hub.settings
    try:
        if not await is_up_to_date(hub.engine):
            if settings.should_auto_migrate:
                await upgrade(hub.engine)
            else:
                raise DatabaseNotMigrated(
                    f"the database is not at the schema this hub needs (revision {head_revision()}); "
                    "run `passerelle migrate` first"
                )
        await hub.registry.reload(force=True)
        hub.services = build_services(hub)
        started: list[Service] = []
        try:
            for service in hub.services:
                await service.start()
                started.append(service)
            async with watching(hub.registry):
                yield hub
        finally:
            for service in reversed(started):
                await service.stop(settings.shutdown_grace)
    finally:
        await hub.registry.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    hub.registry.listeners.append(hub.cache.instances_changed)
    metrics.register_state_collector("response_cache", hub.cache.collect)
    try:
        async with running(hub):
            yield
    finally:
        await app[ACCESS].close()
        await hub.cache.close()
        if hub.owns_engine:
            await hub.engine.dispose()
