"""The NameID link registry, shared by every connector.

A citizen is known to the hub only by Publik's pseudonymous ``NameID``. A linking
connector proves once that the citizen owns an account of its business
application (family number and birth date, card number and PIN…), then stores
``(instance, NameID) -> external id`` here; every later call carries only the
``NameID`` and the connector resolves it server-side::

    created = await self.links.link(name_id, "F0042", extra={"text": "Famille Martin"}, actor=...)
    record = await self.links.resolve(name_id)      # raises NotLinked
    await self.links.unlink(name_id, actor=...)

One link per (instance, NameID): linking again replaces the external id. Every
change writes a row in the audit trail (``link_audit``): ``link`` (created),
``relink`` (another external id), ``verify`` (ownership proved again, or
:meth:`Links.verify` after a check against the back-end), ``unlink``, and
``erase`` (a citizen's erasure, recorded without the NameID, see
:mod:`passerelle.citizens`). A row says who (the API user, ``admin`` or ``cli``),
when, and what (the external id); never the proof of ownership nor ``extra``.

Linking the same NameID concurrently leaves one consistent link: the unique
constraint on (instance, NameID) lets only one insert win, the others retry as
updates of the row it created. Every change writes before it reads (it takes the
row lock on PostgreSQL, the write lock on SQLite), so each audit row names the
account it really replaced and the trail ends on the link that stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.envelope import NotLinked, WrongParameter
from passerelle.storage.models import ConnectorInstance, Link, LinkAudit, utcnow

if TYPE_CHECKING:
    from passerelle.connectors import InstanceInfo

__all__ = [
    "AuditEntry",
    "LinkRecord",
    "Links",
    "citizen_audit",
    "citizen_links",
    "erase_citizen_audit",
    "erase_citizen_links",
    "record_erasure",
    "require_name_id",
]

NAME_ID_MAX_LENGTH = 256  # the width of the name_id columns
EXTERNAL_ID_MAX_LENGTH = 256
ATTEMPTS = 5  # a link insert losing a race retries as an update of the winner's row


def require_name_id(name_id: str | None) -> str:
    """The NameID, or a 400 ``WrongParameter`` naming ``NameID`` when it is missing or empty."""
    if name_id is None or not name_id.strip():
        raise WrongParameter("missing parameter 'NameID': the citizen's pseudonymous identifier")
    if len(name_id) > NAME_ID_MAX_LENGTH:
        raise WrongParameter(f"invalid value for parameter 'NameID': longer than {NAME_ID_MAX_LENGTH} characters")
    return name_id


def _aware(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LinkRecord:
    """One link: this NameID is the owner of ``external_id`` on ``instance`` ("type/slug")."""

    instance: str
    name_id: str
    external_id: str
    extra: dict[str, Any] = field(default_factory=dict)
    created: datetime | None = None
    last_verified: datetime | None = None

    @classmethod
    def from_row(cls, row: Link, instance: str) -> LinkRecord:
        return cls(
            instance=instance,
            name_id=row.name_id,
            external_id=row.external_id,
            extra=dict(row.extra or {}),
            created=_aware(row.created),
            last_verified=_aware(row.last_verified),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "external_id": self.external_id,
            "extra": self.extra,
            "created": self.created,
            "last_verified": self.last_verified,
        }


@dataclass(frozen=True)
class AuditEntry:
    """One row of the link audit trail."""

    timestamp: datetime
    instance: str
    name_id: str
    action: str
    actor: str
    detail: dict[str, Any]

    @classmethod
    def from_row(cls, row: LinkAudit) -> AuditEntry:
        return cls(_aware(row.timestamp), row.instance, row.name_id, row.action, row.actor, dict(row.detail or {}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "instance": self.instance,
            "action": self.action,
            "actor": self.actor,
            "detail": self.detail,
        }


class Links:
    """The NameID links of one connector instance (``connector.links``)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], instance: InstanceInfo) -> None:
        self.sessionmaker = sessionmaker
        self.instance_id = instance.id
        self.label = f"{instance.type}/{instance.slug}"

    def _select(self, name_id: str) -> Any:
        return select(Link).where(Link.instance_id == self.instance_id, Link.name_id == name_id)

    def _update(self, name_id: str) -> Any:
        return (
            update(Link)
            .where(Link.instance_id == self.instance_id, Link.name_id == name_id)
            .execution_options(synchronize_session=False)
        )

    def _audit(self, name_id: str, action: str, actor: str, detail: dict[str, Any], when: datetime) -> LinkAudit:
        return LinkAudit(
            timestamp=when, instance=self.label, name_id=name_id, action=action, actor=actor[:256], detail=detail
        )

    async def link(
        self, name_id: str | None, external_id: str, *, extra: dict[str, Any] | None = None, actor: str = ""
    ) -> bool:
        """Link ``name_id`` to ``external_id`` (create, or update the existing link);
        True when the link was created. ``extra`` is small public metadata shown
        with the link (a label, say): never a secret nor the proof of ownership."""
        name_id = require_name_id(name_id)
        if not isinstance(external_id, str) or not external_id:
            raise ValueError("a link needs a non-empty external id")
        if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
            raise ValueError(f"external ids are at most {EXTERNAL_ID_MAX_LENGTH} characters")
        extra = dict(extra or {})
        for attempt in range(ATTEMPTS):
            try:
                return await self._link_once(name_id, external_id, extra, actor)
            except IntegrityError:
                # Another call created this link between our read and our insert:
                # the next attempt finds its row and updates it.
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _link_once(self, name_id: str, external_id: str, extra: dict[str, Any], actor: str) -> bool:
        async with self.sessionmaker() as session, session.begin():
            now = utcnow()
            # Write first, read after: the write takes the row lock (PostgreSQL) or the
            # database's write lock (SQLite), so what we read next is what we replace.
            touched = await session.execute(self._update(name_id).values(last_verified=now))
            if not touched.rowcount:  # type: ignore[attr-defined]
                session.add(
                    Link(
                        instance_id=self.instance_id,
                        name_id=name_id,
                        external_id=external_id,
                        extra=extra,
                        created=now,
                        last_verified=now,
                    )
                )
                await session.flush()  # the unique constraint speaks here, before the audit row
                action, detail = "link", {"external_id": external_id}
            else:
                row = (await session.scalars(self._select(name_id))).one()
                if row.external_id != external_id:
                    action = "relink"
                    detail = {"external_id": external_id, "previous_external_id": row.external_id}
                else:
                    action, detail = "verify", {"external_id": external_id}
                row.external_id = external_id
                row.extra = extra
            session.add(self._audit(name_id, action, actor, detail, now))
        return action == "link"

    async def get(self, name_id: str | None) -> LinkRecord | None:
        """The link of this NameID, or None."""
        name_id = require_name_id(name_id)
        async with self.sessionmaker() as session:
            row = await session.scalar(self._select(name_id))
        return None if row is None else LinkRecord.from_row(row, self.label)

    async def resolve(self, name_id: str | None) -> LinkRecord:
        """The link of this NameID; raises :class:`~passerelle.envelope.NotLinked` when there is none."""
        record = await self.get(name_id)
        if record is None:
            raise NotLinked("no account is linked to this NameID: link one first")
        return record

    async def list(self, name_id: str | None) -> list[LinkRecord]:
        """This NameID's links on this instance (none or one)."""
        record = await self.get(name_id)
        return [] if record is None else [record]

    async def verify(self, name_id: str | None, *, actor: str = "") -> LinkRecord:
        """Record that the link was checked again against the business application
        (``last_verified`` moves, an audit row says who); raises ``NotLinked``."""
        name_id = require_name_id(name_id)
        async with self.sessionmaker() as session, session.begin():
            now = utcnow()
            touched = await session.execute(self._update(name_id).values(last_verified=now))
            if not touched.rowcount:  # type: ignore[attr-defined]
                raise NotLinked("no account is linked to this NameID: link one first")
            row = (await session.scalars(self._select(name_id))).one()
            session.add(self._audit(name_id, "verify", actor, {"external_id": row.external_id}, now))
            return LinkRecord.from_row(row, self.label)

    async def unlink(self, name_id: str | None, *, actor: str = "") -> bool:
        """Delete the link of this NameID; False when there was none (nothing is audited then)."""
        name_id = require_name_id(name_id)
        async with self.sessionmaker() as session, session.begin():
            statement = (
                delete(Link)
                .where(Link.instance_id == self.instance_id, Link.name_id == name_id)
                .returning(Link.external_id)
            )
            # Of concurrent unlinks, only one gets the row back, and audits.
            external_id = (await session.execute(statement)).scalar_one_or_none()
            if external_id is None:
                return False
            session.add(self._audit(name_id, "unlink", actor, {"external_id": external_id}, utcnow()))
        return True


# -- one citizen across every instance (right of access and erasure) ------------------


async def citizen_links(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> list[LinkRecord]:
    """Every link of this NameID, on every instance."""
    query = (
        select(Link, ConnectorInstance.type, ConnectorInstance.slug)
        .join(ConnectorInstance, ConnectorInstance.id == Link.instance_id)
        .where(Link.name_id == name_id)
        .order_by(ConnectorInstance.type, ConnectorInstance.slug)
    )
    async with sessionmaker() as session:
        rows = (await session.execute(query)).all()
    return [LinkRecord.from_row(link, f"{type_slug}/{slug}") for link, type_slug, slug in rows]


async def citizen_audit(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> list[AuditEntry]:
    """Every audit row about this NameID, oldest first."""
    query = select(LinkAudit).where(LinkAudit.name_id == name_id).order_by(LinkAudit.id)
    async with sessionmaker() as session:
        rows = (await session.scalars(query)).all()
    return [AuditEntry.from_row(row) for row in rows]


async def erase_citizen_links(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> int:
    """Delete every link of this NameID; returns how many."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(delete(Link).where(Link.name_id == name_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def erase_citizen_audit(sessionmaker: async_sessionmaker[AsyncSession], name_id: str) -> int:
    """Delete every audit row about this NameID; returns how many."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(delete(LinkAudit).where(LinkAudit.name_id == name_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def record_erasure(sessionmaker: async_sessionmaker[AsyncSession], *, actor: str, detail: dict[str, Any]) -> None:
    """Write the audit row of an erasure. It names no NameID (the column is empty):
    ``detail`` says only how much each store removed."""
    async with sessionmaker() as session, session.begin():
        session.add(LinkAudit(timestamp=utcnow(), instance="*", name_id="", action="erase", actor=actor, detail=detail))
