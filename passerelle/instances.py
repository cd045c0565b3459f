"""The in-memory copy of instances, API users and access rights.

Requests never query the database for configuration: they read this registry.
Every change through the admin API, the CLI or an import bumps a version row in
the same transaction; each hub process polls that one row every
``config_refresh_interval`` seconds and reloads when it moved. Only instances whose
row changed are rebuilt (their connector's ``close()`` then ``start()`` run).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.connectors import Connector, InstanceInfo
from passerelle.envelope import APIError, NotFound
from passerelle.resourcelogs import ResourceLogWriter
from passerelle.secrets import SecretBox, SecretDecryptError, scrub
from passerelle.settings import Settings
from passerelle.storage.database import read_config_version
from passerelle.storage.models import ApiUser, ConnectorInstance

logger = structlog.get_logger("passerelle.instances")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Caller:
    """An API user as the access check needs it."""

    username: str
    keytype: str
    key: str = field(repr=False)
    networks: tuple[Network, ...] = ()
    # During a key rotation the previous key stays valid until previous_key_expires.
    previous_key: str = field(default="", repr=False)
    previous_key_expires: datetime | None = None

    def active_keys(self, now: datetime) -> tuple[str, ...]:
        """The keys accepted at ``now``: the key, and the previous one until it expires."""
        expires = self.previous_key_expires
        if self.previous_key and expires is not None:
            if expires.tzinfo is None:  # SQLite gives back naive UTC datetimes
                expires = expires.replace(tzinfo=UTC)
            if now < expires:
                return (self.key, self.previous_key) if self.key else (self.previous_key,)
        return (self.key,) if self.key else ()

    def allows_ip(self, remote: str | None) -> bool:
        if not self.networks:
            return True
        if remote is None:
            return False
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def parse_networks(value: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip())


class InstanceRegistry:
    def __init__(
        self,
        settings: Settings,
        types: dict[str, type[Connector]],
        sessionmaker: async_sessionmaker[AsyncSession],
        secrets: SecretBox | None = None,
    ) -> None:
        self.settings = settings
        self.types = types
        self.sessionmaker = sessionmaker
        # Decrypts the stored secrets (configs, API user keys); raises SecretKeyError when
        # no key is set and none may be generated (see passerelle.secrets).
        self.secrets = secrets if secrets is not None else SecretBox.from_settings(settings)
        self.version = -1
        self.connectors: dict[tuple[str, str], Connector] = {}
        self.broken: dict[tuple[str, str], str] = {}
        self.rights: dict[int, dict[str, tuple[Caller, ...]]] = {}
        self.callers: dict[str, Caller] = {}
        self._fingerprints: dict[tuple[str, str], Any] = {}
        self._lock = asyncio.Lock()
        # Called with the live connectors after every reload (e.g. to reschedule periodic jobs).
        self.listeners: list[Callable[[list[Connector]], None]] = []
        # Where the connectors' resource log rows go; stores nothing until the app starts it.
        self.resource_logs = ResourceLogWriter(sessionmaker)

    def lookup(self, type_slug: str, slug: str) -> Connector:
        connector = self.connectors.get((type_slug, slug))
        if connector is not None:
            return connector
        if (type_slug, slug) in self.broken:
            raise APIError(
                f"connector instance {type_slug}/{slug} is not available: its configuration is invalid "
                "(see /manage/api/instances/ for the reason)",
                http_status=503,
            )
        if type_slug not in self.types:
            raise NotFound(f"unknown connector type '{type_slug}'")
        raise NotFound(f"no {type_slug} instance named '{slug}'")

    def instances_of(self, type_slug: str) -> list[Connector]:
        return [c for (t, _), c in sorted(self.connectors.items()) if t == type_slug]

    def all(self) -> list[Connector]:
        return [c for _, c in sorted(self.connectors.items())]

    async def reload(self, *, force: bool = False) -> bool:
        """Reload from the database if the version moved; True when something was reloaded."""
        async with self._lock:
            async with self.sessionmaker() as session:
                version = await read_config_version(session)
                if version == self.version and not force:
                    return False
                rows = (await session.scalars(select(ConnectorInstance))).all()
                users = (await session.scalars(select(ApiUser))).all()
            await self._apply(rows, users)
            self.version = version
            for listener in self.listeners:
                listener(self.all())
            return True

    async def _apply(self, rows: Any, users: Any) -> None:
        callers = {}
        for user in users:
            try:
                networks = parse_networks(user.ipsource or "")
            except ValueError:
                logger.error("invalid IP allow-list, the API user is refused", apiuser=user.username)
                continue
            try:
                user_key = self.secrets.decrypt(user.key or "")
                previous_key = self.secrets.decrypt(user.previous_key or "")
            except SecretDecryptError as exc:
                logger.error(
                    "an API user's key cannot be decrypted, the API user is refused",
                    apiuser=user.username,
                    reason=str(exc),
                )
                continue
            callers[user.username] = Caller(
                user.username,
                user.keytype or "",
                user_key,
                networks,
                previous_key=previous_key,
                previous_key_expires=user.previous_key_expires,
            )

        seen: set[tuple[str, str]] = set()
        rights: dict[int, dict[str, tuple[Caller, ...]]] = {}
        broken: dict[tuple[str, str], str] = {}
        for row in rows:
            key = (row.type, row.slug)
            seen.add(key)
            per_perm: dict[str, list[Caller]] = {}
            for right in row.access:
                caller = callers.get(right.apiuser.username)
                if caller is not None:
                    per_perm.setdefault(right.codename, []).append(caller)
            rights[row.id] = {perm: tuple(c) for perm, c in per_perm.items()}

            cls = self.types.get(row.type)
            if cls is None:
                broken[key] = f"connector type '{row.type}' is not installed"
                await self._drop(key)
                continue
            fingerprint = (row.id, row.title, row.description, repr(sorted(row.config.items())))
            if self._fingerprints.get(key) == fingerprint and key in self.connectors:
                # A new log level needs no rebuild.
                self.connectors[key]._log_level = row.log_level or ""
                continue
            try:
                connector = build_connector(cls, row, self.settings, self.secrets, self.sessionmaker)
            except BrokenInstance as exc:
                broken[key] = exc.reason
                await self._drop(key)
                continue
            connector._resource_logs = self.resource_logs  # for connector.logger
            connector._registry = self  # for connector.call_instance
            connector._log_level = row.log_level or ""
            try:
                await connector.start()
            except Exception as exc:
                logger.exception("connector instance failed to start", instance=f"{row.type}/{row.slug}")
                broken[key] = f"failed to start: {type(exc).__name__}"
                await self._drop(key)
                continue
            await self._drop(key)
            self.connectors[key] = connector
            self._fingerprints[key] = fingerprint
        for key in list(self.connectors):
            if key not in seen:
                await self._drop(key)
        self.callers = callers
        self.rights = rights
        self.broken = broken

    async def _drop(self, key: tuple[str, str]) -> None:
        connector = self.connectors.pop(key, None)
        self._fingerprints.pop(key, None)
        if connector is not None:
            await shutdown(connector)

    async def watch(self) -> None:
        """Poll the version row forever (cancelled when the app stops)."""
        while True:
            await asyncio.sleep(self.settings.config_refresh_interval)
            try:
                await self.reload()
            except Exception:
                # A database hiccup must not stop the watcher; the next poll retries.
                logger.exception("configuration refresh failed")

    async def close(self) -> None:
        async with self._lock:
            for key in list(self.connectors):
                await self._drop(key)


class BrokenInstance(Exception):
    """A stored instance whose connector cannot be built; ``reason`` says why, without secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_connector(
    cls: type[Connector],
    row: ConnectorInstance,
    settings: Settings,
    secrets: SecretBox,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Connector:
    """The connector object of a stored instance (secrets decrypted, config validated), not started."""
    try:
        stored = secrets.open_config(cls.Config, row.config)
    except SecretDecryptError as exc:
        logger.error(
            "an instance's secret cannot be decrypted, the instance is unavailable",
            instance=f"{row.type}/{row.slug}",
            reason=str(exc),
        )
        raise BrokenInstance(f"invalid configuration: {exc}") from None
    try:
        config = cls.Config.model_validate(stored)
    except ValidationError as exc:
        reason = "invalid configuration: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise BrokenInstance(scrub(reason, stored.values())) from None
    info = InstanceInfo(row.id, row.type, row.slug, row.title, row.description or "")
    connector = cls(info, config, settings)
    connector._sessionmaker = sessionmaker  # for connector.links, records, add_job
    return connector


async def shutdown(connector: Connector) -> None:
    """Close a connector and the resources the hub gave it."""
    try:
        await connector.close()
    except Exception:
        logger.exception("connector instance failed to close", instance=repr(connector))
    if connector._http is not None:
        await connector._http.close()


@contextlib.asynccontextmanager
async def watching(registry: InstanceRegistry) -> Any:
    task = asyncio.create_task(registry.watch())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
