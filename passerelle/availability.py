"""Availability of the instances: each one's ``check_status()`` run periodically,
its up/down history, and notifications when it changes.

Every ``AVAILABILITY_INTERVAL`` seconds, each hub process goes through the live
instances; for each one, the process that claims ``availability:<type>/<slug>``
(:func:`passerelle.locks.claim`) runs the check, so an instance is checked once per
period across the cluster. A check that raises, or does not finish within its
deadline (the interval, at most 25 s), says "down", with a short message: the
exception's class and message, redacted, never a traceback.

The ``availability`` row holds the current state (``status``, ``since``,
``last_check``, ``message``); an ``availability_event`` row is added on each change
only. A change is notified once it has lasted ``AVAILABILITY_DOWN_DELAY`` (down)
or ``AVAILABILITY_UP_DELAY`` (up) seconds, as seen by a later check: an ERROR log
line (down) or a WARNING one (up again), a line in the instance's resource logs,
and a JSON POST to ``AVAILABILITY_WEBHOOK_URL`` when set::

    {"event": "availability", "type": "sig", "slug": "ban", "title": "BAN",
     "instance": "sig/ban", "status": "down", "previous_status": "up",
     "since": "2026-11-29T10:00:00+00:00", "message": "UpstreamUnavailable: …"}

``notified_status`` is updated in the same transaction as the state, so one change
is notified once, by one process; a failing webhook is logged, not retried. A new
instance found up is not notified. A state that flips back before its delay is
never notified.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client.core import Metric
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle import locks, metrics
from passerelle.connectors import Connector, secret_fields
from passerelle.envelope import HubError
from passerelle.http import HttpClient, HttpOptions
from passerelle.hub import EveryInterval, Hub
from passerelle.redaction import redact_text
from passerelle.secrets import scrub
from passerelle.settings import Settings
from passerelle.storage.models import Availability, AvailabilityEvent, ConnectorInstance, utcnow

__all__ = [
    "DOWN",
    "UP",
    "AvailabilityService",
    "State",
    "current_states",
    "instance_availability",
    "summary",
]

logger = structlog.get_logger("passerelle.availability")

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
MAX_CHECK_TIMEOUT = 25.0  # under the callers' 28 s: a check is like a call
MAX_MESSAGE = 500
WEBHOOK_TIMEOUT = 5.0
COLLECTOR = "availability"


@dataclass
class State:
    """An instance's availability as last checked."""

    status: str
    since: datetime
    last_check: datetime
    message: str
    notified_status: str

    @classmethod
    def of(cls, row: Availability) -> State:
        return cls(row.status, _aware(row.since), _aware(row.last_check), row.message, row.notified_status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "since": self.since,
            "last_check": self.last_check,
            "message": self.message,
            "notified_status": self.notified_status or None,
        }


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def describe_failure(error: BaseException, connector: Connector) -> str:
    """What a failed check says: class and message, without secrets nor personal data."""
    text = error.message if isinstance(error, HubError) else str(error)
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    secrets = []
    for name in secret_fields(type(connector).Config):
        value = getattr(connector.config, name, None)
        secrets.append(value.get_secret_value() if isinstance(value, SecretStr) else value)
    return redact_text(scrub(text, secrets))[:MAX_MESSAGE]


async def probe(connector: Connector, timeout: float) -> tuple[str, str]:
    """Run the instance's check: ``(status, message)``."""
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            await connector.check_status()
    except TimeoutError as exc:
        if deadline.expired():
            return DOWN, f"the check did not finish in {timeout:g} s"
        return DOWN, describe_failure(exc, connector)
    except Exception as exc:
        return DOWN, describe_failure(exc, connector)
    return UP, ""


@dataclass
class _Change:
    """What a check changed, decided inside its transaction."""

    state: State
    changed: bool
    notify: bool
    previous_status: str  # the status notified before, "" when none was


class AvailabilityService(EveryInterval):
    """Checks every live instance each interval (once across the cluster), keeps the
    state and history, notifies changes. Also used by the admin API's "check now"."""

    name = "availability"

    def __init__(
        self,
        hub: Hub,
        *,
        settings: Settings | None = None,
        interval: float | None = None,
        timeout: float | None = None,
        concurrency: int = 10,
    ) -> None:
        self.hub = hub
        self.settings = settings or hub.settings
        self.interval = float(interval if interval is not None else self.settings.availability_interval)
        self.timeout = timeout if timeout is not None else min(self.interval, MAX_CHECK_TIMEOUT)
        self.concurrency = concurrency
        self.sessionmaker: async_sessionmaker[AsyncSession] = hub.sessionmaker
        # The last known state of each instance, cluster-wide, for the metrics gauge.
        self.known: dict[tuple[str, str], str] = {}
        self._webhook: HttpClient | None = None

    # -- checks ----------------------------------------------------------------

    async def run_once(self) -> int:
        """Check every live instance this process could claim; how many it checked."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def claimed_check(connector: Connector) -> bool:
            async with semaphore:
                info = connector.instance
                name = f"availability:{info.type}/{info.slug}"
                if not await locks.claim(self.sessionmaker, name, hold=self.interval * 0.9):
                    return False
                error = ""
                try:
                    await self.check(connector)
                except Exception as exc:
                    # The database failing must not stop the other instances' checks.
                    logger.exception("availability check failed", instance=f"{info.type}/{info.slug}")
                    error = type(exc).__name__
                await locks.finish(self.sessionmaker, name, error=error)
                return True

        results = await asyncio.gather(*(claimed_check(c) for c in self.hub.registry.all()))
        await self.refresh()
        return sum(results)

    async def check(self, connector: Connector) -> State:
        """Check one instance now, store the result, notify if due; the new state."""
        status, message = await probe(connector, self.timeout)
        change = await self._store(connector.instance.id, status, message)
        info = connector.instance
        self.known[(info.type, info.slug)] = change.state.status
        if change.changed:
            logger.info(
                "availability changed",
                instance=f"{info.type}/{info.slug}",
                status=status,
                message=message,
            )
        if change.notify:
            await self._notify(connector, change)
        return change.state

    async def _store(self, instance_id: int, status: str, message: str) -> _Change:
        try:
            return await self._store_once(instance_id, status, message)
        except IntegrityError:
            # A first check ran at the same time elsewhere ("check now"): its row exists now.
            return await self._store_once(instance_id, status, message)

    async def _store_once(self, instance_id: int, status: str, message: str) -> _Change:
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            # Locked (PostgreSQL) so that a "check now" and the periodic check do not both notify.
            row = await session.get(Availability, instance_id, with_for_update=True)
            changed = row is None or row.status != status
            if row is None:
                row = Availability(
                    instance_id=instance_id, status=status, since=now, last_check=now, notified_status=""
                )
                session.add(row)
            elif changed:
                row.status, row.since = status, now
            row.last_check, row.message = now, message
            if changed:
                session.add(AvailabilityEvent(instance_id=instance_id, timestamp=now, status=status, message=message))
            if not row.notified_status and status == UP:
                # A new instance that works: nothing happened worth telling.
                row.notified_status = UP
            delay = self.settings.availability_down_delay if status == DOWN else self.settings.availability_up_delay
            notify = row.notified_status != status and now - _aware(row.since) >= timedelta(seconds=delay)
            notified_before = row.notified_status
            if notify:
                row.notified_status = status
            state = State.of(row)
        return _Change(state, changed, notify, notified_before)

    # -- notifications -----------------------------------------------------------

    async def _notify(self, connector: Connector, change: _Change) -> None:
        info = connector.instance
        state = change.state
        fields = {
            "instance": f"{info.type}/{info.slug}",
            "since": state.since.isoformat(),
            "message": state.message,
        }
        if state.status == DOWN:
            logger.error("instance unavailable", **fields)
            connector.logger.error(f"unavailable: {state.message}", since=fields["since"])
        else:
            logger.warning("instance available again", **fields)
            connector.logger.warning("available again", since=fields["since"])
        url = self.settings.availability_webhook_url
        if not url:
            return
        payload = {
            "event": "availability",
            "type": info.type,
            "slug": info.slug,
            "title": info.title,
            "instance": f"{info.type}/{info.slug}",
            "status": state.status,
            "previous_status": change.previous_status or None,
            "since": fields["since"],
            "message": state.message,
        }
        try:
            response = await self.webhook.post(url, json=payload)
            if response.status >= 400:
                raise RuntimeError(f"the webhook answered HTTP {response.status}")
        except Exception as exc:
            # Never retried: the next change will be notified anyway, and the log line is there.
            logger.warning(
                "availability webhook failed",
                instance=fields["instance"],
                error=redact_text(f"{type(exc).__name__}: {exc}")[:MAX_MESSAGE],
            )

    @property
    def webhook(self) -> HttpClient:
        if self._webhook is None:
            self._webhook = HttpClient(
                "availability-webhook", HttpOptions(connect_timeout=2.0, total_timeout=WEBHOOK_TIMEOUT)
            )
        return self._webhook

    # -- the gauge -----------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every instance's state (other processes check some of them)."""
        states = await current_states(self.sessionmaker)
        self.known = {key: state.status for key, state in states.items()}

    def collect(self) -> Iterable[Metric]:
        gauge = metrics.gauge(
            "passerelle_instance_up",
            "Whether the instance's last availability check succeeded (1) or failed (0).",
            ["type", "instance"],
        )
        live = {(c.instance.type, c.instance.slug) for c in self.hub.registry.all()}
        for (type_slug, slug), status in sorted(self.known.items()):
            if (type_slug, slug) in live:
                gauge.add_metric([type_slug, slug], 1.0 if status == UP else 0.0)
        yield gauge

    # -- service ---------------------------------------------------------------------

    async def start(self) -> None:
        metrics.register_state_collector(COLLECTOR, self.collect)
        await super().start()

    async def stop(self, grace: float) -> None:
        await super().stop(grace)
        metrics.unregister_state_collector(COLLECTOR)
        await self.close()

    async def close(self) -> None:
        if self._webhook is not None:
            await self._webhook.close()
            self._webhook = None


# -- reading ------------------------------------------------------------------------


async def current_states(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], State]:
    """Every instance's last known state, by (type, slug)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(ConnectorInstance.type, ConnectorInstance.slug, Availability).join(
                Availability, Availability.instance_id == ConnectorInstance.id
            )
        )
        return {(type_slug, slug): State.of(row) for type_slug, slug, row in rows}


async def instance_availability(
    sessionmaker: async_sessionmaker[AsyncSession], instance_id: int, *, limit: int = 10, offset: int = 0
) -> tuple[State | None, list[dict[str, Any]], int]:
    """An instance's state, a page of its history (newest first) and the number of events."""
    async with sessionmaker() as session:
        row = await session.get(Availability, instance_id)
        state = State.of(row) if row is not None else None
        total = await session.scalar(
            select(func.count()).select_from(AvailabilityEvent).where(AvailabilityEvent.instance_id == instance_id)
        )
        events = await session.scalars(
            select(AvailabilityEvent)
            .where(AvailabilityEvent.instance_id == instance_id)
            .order_by(AvailabilityEvent.timestamp.desc(), AvailabilityEvent.id.desc())
            .limit(limit)
            .offset(offset)
        )
        history = [
            {"timestamp": _aware(event.timestamp), "status": event.status, "message": event.message} for event in events
        ]
    return state, history, int(total or 0)


def summary(connectors: Iterable[Connector], states: dict[tuple[str, str], State]) -> dict[str, Any]:
    """Counts of live instances up, down and not checked yet, and the ones down."""
    counts = {UP: 0, DOWN: 0, UNKNOWN: 0}
    down = []
    for connector in connectors:
        info = connector.instance
        state = states.get((info.type, info.slug))
        status = state.status if state is not None else UNKNOWN
        counts[status] = counts.get(status, 0) + 1
        if state is not None and status == DOWN:
            down.append(
                # No message: /health is public, the message is on the instance's page.
                {"type": info.type, "slug": info.slug, "title": info.title, "since": state.since}
            )
    return {**counts, "down_instances": down}
