"""Per-instance resource logs: what an instance did, kept in the database for its
administrators (``GET /manage/api/instances/<type>/<slug>/logs/``).

A connector writes them through ``self.logger`` (:class:`ResourceLogger`), with a
level: every line goes to stdout (structlog, with the instance), and a line at or
above the instance's level (``ConnectorInstance.log_level``, else the setting
``RESOURCE_LOG_LEVEL``) is also stored. The middleware adds one line per endpoint
call (:func:`passerelle.middleware.record_call`).

Storage is batched so that a burst of requests never becomes a burst of database
writes: :class:`ResourceLogWriter` keeps rows in a bounded queue in memory and
inserts them in one statement every second, or as soon as ``batch_size`` rows
wait. When the queue is full the oldest rows are dropped and counted (one warning
per minute). Stopping the writer inserts what is queued.

Lines logged while serving a request wait for the end of the request
(:meth:`ResourceLogWriter.end_request`) and take the request's ``NameID``: the
citizen's rows can then be found and erased (:func:`erase_citizen`) even when the
connector did not name the citizen itself.

Everything stored is redacted first (:mod:`passerelle.redaction`): the message
with ``redact_text``, the extra fields with ``redact``. Rows older than
``RESOURCE_LOG_RETENTION_DAYS`` are deleted by :func:`purge`, run every hour by one hub
process (:mod:`passerelle.retention`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.redaction import redact, redact_text
from passerelle.requestid import current_request_id, request_id_of
from passerelle.settings import LOG_LEVELS
from passerelle.storage.models import ConnectorInstance, ResourceLog, utcnow

if TYPE_CHECKING:
    from passerelle.connectors import Connector
    from passerelle.settings import Settings

__all__ = [
    "CALLER",
    "LEVELS",
    "LogQuery",
    "ResourceLogWriter",
    "ResourceLogger",
    "count_citizen",
    "erase_citizen",
    "level_name",
    "log_call",
    "purge",
    "search",
]

logger = structlog.get_logger("passerelle.resourcelogs")

LEVELS: dict[str, int] = {name: logging.getLevelName(name) for name in LOG_LEVELS}
# The API user who made an endpoint call, put on the request by the dispatcher once
# the access check passed, for the call's resource log line.
CALLER = web.RequestKey("caller", str)
# Stored messages are cut: a connector logging a whole answer must not fill the table.
MAX_MESSAGE = 2000
RESERVED_FIELDS = frozenset({"event", "level", "timestamp", "logger", "instance"})


def level_name(level: int) -> str:
    return logging.getLevelName(level) if level in LEVELS.values() else str(level)


def level_number(name: str) -> int:
    """``"warning"`` -> 30; ValueError naming the accepted levels."""
    number = LEVELS.get(name.upper())
    if number is None:
        raise ValueError(f"unknown log level {name!r}: use one of {', '.join(LOG_LEVELS)}")
    return number


# -- writing ---------------------------------------------------------------------


class ResourceLogWriter:
    """The batched writer of resource log rows, a service of the hub (see the module
    docstring). Until it is started (it is by ``serve`` and ``passerelle worker``, not
    by the other commands), rows are not kept: loggers then write to stdout only."""

    name = "resource-logs"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        flush_interval: float = 1.0,
        batch_size: int = 200,
        max_queued: int = 10_000,
        max_batch: int = 1000,
        hold_limit: float = 60.0,
        drop_warning_interval: float = 60.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_queued = max_queued
        self.max_batch = max_batch
        # Lines of a request whose end never came (a cancelled call) are stored after this.
        self.hold_limit = hold_limit
        self.drop_warning_interval = drop_warning_interval
        self.running = False
        self.inserts = 0  # INSERT statements run
        self.written = 0
        self.dropped = 0
        self._queue: deque[dict[str, Any]] = deque()
        # Lines of requests in flight, by request id: (when the first came, the lines).
        self._held: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._held_rows = 0
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._dropped_reported = 0
        self._last_drop_warning = 0.0

    # The hot path: called synchronously by loggers and the middleware.

    def add(
        self,
        instance_id: int,
        level: int,
        message: str,
        *,
        name_id: str = "",
        extra: dict[str, Any] | None = None,
        request_id: str | None = None,
        hold: bool = True,
        redacted: bool = False,
    ) -> None:
        """Queue a row, redacted here unless the caller did (``redacted``). Inside a
        request and without a NameID, it waits for the request's end to take the
        request's NameID, unless ``hold`` is false."""
        if not self.running:
            return
        rid = request_id if request_id is not None else current_request_id()
        row = {
            "instance_id": instance_id,
            "timestamp": utcnow(),
            "level": level,
            "message": (message if redacted else redact_text(message))[:MAX_MESSAGE],
            "request_id": rid or "",
            "name_id": name_id or "",
            "extra": (extra if redacted else redact(extra)) if extra else {},
        }
        if rid and not name_id and hold:
            held = self._held.get(rid)
            if held is None:
                self._held[rid] = (time.monotonic(), [row])
            else:
                held[1].append(row)
            self._held_rows += 1
            if self._held_rows > self.max_queued:
                self._release_oldest()
            return
        self._enqueue(row)

    def end_request(self, request_id: str, name_id: str | None) -> None:
        """The request ended: its waiting lines take its NameID and are queued."""
        held = self._held.pop(request_id, None)
        if held is None:
            return
        rows = held[1]
        self._held_rows -= len(rows)
        for row in rows:
            if name_id and not row["name_id"]:
                row["name_id"] = name_id
            self._enqueue(row)

    def _enqueue(self, row: dict[str, Any]) -> None:
        if len(self._queue) >= self.max_queued:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(row)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def _release_oldest(self) -> None:
        rid = next(iter(self._held))
        self.end_request(rid, None)

    def _release_stale(self) -> None:
        limit = time.monotonic() - self.hold_limit
        for rid, (since, _) in list(self._held.items()):
            if since > limit:
                break  # insertion order: the rest are younger
            self.end_request(rid, None)

    @property
    def queued(self) -> int:
        return len(self._queue) + self._held_rows

    # Storage.

    async def flush(self, *, everything: bool = False) -> int:
        """Insert the queued rows (at most ``max_batch`` per statement); the rows
        written. ``everything`` also stores the lines of requests still in flight."""
        if everything:
            for rid in list(self._held):
                self.end_request(rid, None)
        written = 0
        async with self._flushing:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
                written += await self._insert(batch)
                if len(self._queue) < self.batch_size and not everything:
                    break
        return written

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        try:
            try:
                await self._execute(rows)
            except IntegrityError:
                # An instance deleted since its lines were queued: keep the others.
                rows = await self._of_existing_instances(rows)
                if not rows:
                    return 0
                await self._execute(rows)
        except Exception as exc:
            self.dropped += len(rows)
            logger.warning("resource logs could not be stored", rows=len(rows), error=type(exc).__name__)
            return 0
        self.written += len(rows)
        return len(rows)

    async def _execute(self, rows: list[dict[str, Any]]) -> None:
        async with self.sessionmaker() as session:
            # A list of parameters: one executemany (one multi-row INSERT on PostgreSQL).
            await session.execute(insert(ResourceLog), rows)
            await session.commit()
        self.inserts += 1

    async def _of_existing_instances(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = {row["instance_id"] for row in rows}
        async with self.sessionmaker() as session:
            existing = set(
                (await session.scalars(select(ConnectorInstance.id).where(ConnectorInstance.id.in_(wanted)))).all()
            )
        return [row for row in rows if row["instance_id"] in existing]

    def _warn_drops(self) -> None:
        now = time.monotonic()
        if self.dropped == self._dropped_reported or now - self._last_drop_warning < self.drop_warning_interval:
            return
        logger.warning(
            "resource log lines dropped: the queue was full or the database failed",
            dropped=self.dropped - self._dropped_reported,
            dropped_total=self.dropped,
        )
        self._dropped_reported = self.dropped
        self._last_drop_warning = now

    # Service.

    async def start(self) -> None:
        self.running, self._stopping = True, False
        self._task = asyncio.create_task(self._run(), name="resource-log-writer")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            if self._stopping:
                return  # stop() writes everything, in one go
            self._wake.clear()
            self._release_stale()
            try:
                await self.flush()
            except Exception:
                logger.exception("resource log flush failed")
            self._warn_drops()

    async def stop(self, grace: float) -> None:
        """Store what is queued, within ``grace`` seconds."""
        self.running, self._stopping = False, True
        self._wake.set()
        deadline = time.monotonic() + max(grace, 0.1)
        try:
            if self._task is not None:
                # Not cancelled: a batch being inserted would be lost.
                async with asyncio.timeout(max(grace, 0.1)):
                    await self._task
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.01)):
                await self.flush(everything=True)
        except TimeoutError:
            logger.warning("resource log lines lost at shutdown", rows=self.queued)
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self._warn_drops()


class ResourceLogger:
    """A connector instance's logger (``connector.logger``)::

        self.logger.info("invoice paid", invoice=number)
        self.logger.warning("slow answer", seconds=4.2, name_id=ctx.name_id)

    Each call writes a structlog line on stdout and, at or above the instance's
    level, a resource log row. ``name_id`` (or a ``NameID`` field) names the citizen
    the line is about; inside a request it defaults to the request's ``NameID``.
    """

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        info = connector.instance
        self._stdout = structlog.get_logger("passerelle.resource").bind(instance=f"{info.type}/{info.slug}")

    @property
    def level(self) -> int:
        """The lowest level stored for this instance."""
        return instance_level(self._connector)

    def is_enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` is stored (to skip building costly extras)."""
        writer = self._connector._resource_logs
        return writer is not None and writer.running and level >= self.level

    def log(self, level: int, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self._log(level, message, name_id, extra, exc_info=False)

    def _log(self, level: int, message: str, name_id: str | None, extra: dict[str, Any], *, exc_info: bool) -> None:
        if RESERVED_FIELDS.intersection(extra):
            extra = {(f"extra_{k}" if k in RESERVED_FIELDS else k): v for k, v in extra.items()}
        name_id = name_id or _as_name_id(extra.get("NameID"))
        fields = {**extra, "name_id": name_id} if name_id else extra
        if exc_info:
            self._stdout.log(level, message, exc_info=True, **fields)
        else:
            self._stdout.log(level, message, **fields)
        if self.is_enabled_for(level):
            writer = self._connector._resource_logs
            assert writer is not None
            writer.add(self._connector.instance.id, level, message, name_id=name_id or "", extra=extra)

    def debug(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self.log(logging.DEBUG, message, name_id=name_id, **extra)

    def info(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self.log(logging.INFO, message, name_id=name_id, **extra)

    def warning(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self.log(logging.WARNING, message, name_id=name_id, **extra)

    def error(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self.log(logging.ERROR, message, name_id=name_id, **extra)

    def critical(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        self.log(logging.CRITICAL, message, name_id=name_id, **extra)

    def exception(self, message: str, /, *, name_id: str | None = None, **extra: Any) -> None:
        """An ERROR line about the exception being handled: its class and message are
        stored (redacted), its traceback goes to stdout only."""
        error = sys.exc_info()[1]
        if error is not None:
            extra.setdefault("error", f"{type(error).__name__}: {error}")
        self._log(logging.ERROR, message, name_id, extra, exc_info=error is not None)


def _as_name_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def instance_level(connector: Connector) -> int:
    """The lowest level of the resource log lines stored for this instance."""
    return LEVELS.get(connector._log_level) or LEVELS[connector.settings.resource_log_level]


def log_call(
    request: web.Request, connector: Connector, endpoint: str, response: web.StreamResponse, duration: float
) -> None:
    """The resource log line of an endpoint call (called by the middleware at its end):
    DEBUG for a success, INFO for a business error answered 200 (``err: 1``), WARNING for
    4xx, ERROR for 5xx (upstream failures included), with the error's description. Query
    parameters are named, their values never stored (they may be personal). The call's
    waiting lines are then released with its ``NameID``.

    Successes are DEBUG, unlike Passerelle's INFO: storing a row per autocompletion
    keystroke would cost more than answering it (bench/overhead). An instance set to DEBUG
    stores every call."""
    writer = connector._resource_logs
    if writer is None or not writer.running:
        return
    rid = request_id_of(request)
    name_id = request.query.get("NameID") or ""
    status = response.status
    threshold = instance_level(connector)
    error: tuple[str, str] | None = None
    if status < 400:
        level = logging.DEBUG
        if threshold <= logging.INFO:
            # A business error is INFO (_error_of tells a success without parsing it).
            error = _error_of(response)
            if error is not None:
                level = logging.INFO
    else:
        level = logging.WARNING if status < 500 else logging.ERROR
        error = _error_of(response)
    if level >= threshold:
        ms = round(duration * 1000, 1)
        # Redacted here, on the hot path, only where the caller or the connector wrote:
        # the method, endpoint name, status and API user come from the hub.
        extra: dict[str, Any] = {
            "method": request.method,
            "endpoint": endpoint,
            "status": status,
            "duration_ms": ms,
            "apiuser": request.get(CALLER),
            "params": [redact_text(name) for name in sorted(set(request.query))],
        }
        message = f"{request.method} {endpoint} → {status} in {ms:g} ms"
        if error is not None:
            extra["err_class"], extra["err_desc"] = error[0], redact_text(error[1])
            message += f": {extra['err_desc']}"
        writer.add(
            connector.instance.id,
            level,
            message,
            name_id=name_id,
            extra=extra,
            request_id=rid,
            hold=False,
            redacted=True,
        )
    writer.end_request(rid, name_id)


def _error_of(response: web.StreamResponse) -> tuple[str, str] | None:
    """``(err_class, err_desc)`` of an error envelope; None for a success."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes) or not body.startswith(b'{"err":') or body.startswith(b'{"err":0'):
        # Envelopes start with "err" (passerelle.envelope): a success is seen without parsing it.
        return None
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict):
        return None
    return str(envelope.get("err_class") or ""), str(envelope.get("err_desc") or "")


# -- reading -----------------------------------------------------------------------


@dataclass
class LogQuery:
    """Filters of a search in one instance's resource logs (newest first)."""

    min_level: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    request_id: str | None = None
    name_id: str | None = None
    limit: int = 100
    offset: int = 0


def row_view(row: ResourceLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "timestamp": _aware(row.timestamp),
        "level": level_name(row.level),
        "message": row.message,
        "request_id": row.request_id,
        "name_id": row.name_id,
        "extra": row.extra,
    }


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def search(
    sessionmaker: async_sessionmaker[AsyncSession], instance_id: int, query: LogQuery
) -> tuple[list[dict[str, Any]], int]:
    """One page of an instance's rows matching ``query``, and how many match in all."""
    conditions = [ResourceLog.instance_id == instance_id]
    if query.min_level is not None:
        conditions.append(ResourceLog.level >= query.min_level)
    if query.since is not None:
        conditions.append(ResourceLog.timestamp >= query.since)
    if query.until is not None:
        conditions.append(ResourceLog.timestamp < query.until)
    if query.text:
        escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(ResourceLog.message.ilike(f"%{escaped}%", escape="\\"))
    if query.request_id:
        conditions.append(ResourceLog.request_id == query.request_id)
    if query.name_id:
        conditions.append(ResourceLog.name_id == query.name_id)
    async with sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(ResourceLog).where(*conditions)) or 0
        rows = await session.scalars(
            select(ResourceLog)
            .where(*conditions)
            .order_by(ResourceLog.timestamp.desc(), ResourceLog.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        return [row_view(row) for row in rows], total


# -- retention and erasure -----------------------------------------------------------


async def purge(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Delete the rows older than ``RESOURCE_LOG_RETENTION_DAYS``; how many."""
    cutoff = utcnow() - timedelta(days=settings.resource_log_retention_days)
    async with sessionmaker() as session:
        result = await session.execute(delete(ResourceLog).where(ResourceLog.timestamp < cutoff))
        await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_citizen(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> int:
    """How many resource log rows are about this NameID (right of access: the count,
    the lines themselves are read in the admin API by instance)."""
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(ResourceLog).where(ResourceLog.name_id == name_id)
        )
    return int(count or 0)


async def erase_citizen(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> int:
    """Delete the rows about this NameID; how many."""
    async with sessionmaker() as session:
        result = await session.execute(delete(ResourceLog).where(ResourceLog.name_id == name_id))
        await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
