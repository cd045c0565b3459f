"""Tables of the hub core. Schema changes go through an Alembic migration
(``passerelle/storage/migrations/versions``); a test checks models and
migrations agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class ConnectorInstance(Base):
    """One configured connector: ``/<type>/<slug>/``."""

    __tablename__ = "connector_instance"
    __table_args__ = (UniqueConstraint("type", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Level of this instance's resource logs; empty: the hub's RESOURCE_LOG_LEVEL.
    log_level: Mapped[str] = mapped_column(String(10), default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    access: Mapped[list[AccessRight]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", lazy="selectin"
    )


class ApiUser(Base):
    """A caller of the hub: open (no key), ``API`` (static key) or ``SIGN`` (Publik signature)."""

    __tablename__ = "api_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    fullname: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    keytype: Mapped[str] = mapped_column(String(10), default="")
    # Stored encrypted (passerelle.secrets); the previous key stays valid until
    # previous_key_expires so that a rotation needs no downtime.
    key: Mapped[str] = mapped_column(String(1024), default="")
    previous_key: Mapped[str] = mapped_column(String(1024), default="")
    previous_key_expires: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    ipsource: Mapped[str] = mapped_column(String(512), default="")

    access: Mapped[list[AccessRight]] = relationship(back_populates="apiuser", cascade="all, delete-orphan")


class AccessRight(Base):
    """One permission codename granted to one API user on one instance."""

    __tablename__ = "access_right"
    __table_args__ = (UniqueConstraint("apiuser_id", "instance_id", "codename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    codename: Mapped[str] = mapped_column(String(100), default="can_access")
    apiuser_id: Mapped[int] = mapped_column(ForeignKey("api_user.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"))

    apiuser: Mapped[ApiUser] = relationship(back_populates="access", lazy="joined")
    instance: Mapped[ConnectorInstance] = relationship(back_populates="access")


class ConfigVersion(Base):
    """A counter bumped by every change to instances, API users or rights, so that
    every hub process knows when to reload its in-memory copy."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class Nonce(Base):
    """A Publik signature nonce already seen, kept until its timestamp window closes."""

    __tablename__ = "signature_nonce"

    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires: Mapped[datetime] = mapped_column(index=True)


class Link(Base):
    """A citizen's pseudonymous NameID linked to an account of a business application."""

    __tablename__ = "link"
    __table_args__ = (UniqueConstraint("instance_id", "name_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"))
    name_id: Mapped[str] = mapped_column(String(256), index=True)
    external_id: Mapped[str] = mapped_column(String(256))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_verified: Mapped[datetime] = mapped_column(default=utcnow)


class LinkAudit(Base):
    """Who linked, unlinked, verified or erased what, and when; never a secret."""

    __tablename__ = "link_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    instance: Mapped[str] = mapped_column(String(201))  # "type/slug": kept after the instance is deleted
    name_id: Mapped[str] = mapped_column(String(256), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Job(Base):
    """One-off work queued by a connector (``add_job``), run once by one process.

    ``state`` goes pending -> running -> done, or back to pending with a later
    ``run_after`` after a failed attempt, until ``max_attempts`` makes it failed.
    A running job is reserved until ``locked_until`` (a lease renewed while it
    runs): when its process dies, the lease expires and another process runs it.
    ``postponements`` counts the times the job asked to run later (``RetryLater``).
    One pending or running job at most per instance, method and ``natural_id``.
    """

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_run_after", "state", "run_after"),
        Index(
            "uq_job_active_natural_id",
            "instance_id",
            "method",
            "natural_id",
            unique=True,
            sqlite_where=text("state IN ('pending', 'running') AND natural_id IS NOT NULL"),
            postgresql_where=text("state IN ('pending', 'running') AND natural_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    natural_id: Mapped[str | None] = mapped_column(String(256), nullable=True, default=None, index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    postponements: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str] = mapped_column(String(128), default="")
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


class PeriodicLock(Base):
    """Makes a periodic job run once cluster-wide: a process runs it only if it
    could move ``locked_until`` forward (one atomic UPDATE)."""

    __tablename__ = "periodic_lock"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    owner: Mapped[str] = mapped_column(String(128), default="")
    last_started: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    last_finished: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Availability(Base):
    """The current availability of an instance, as its last check saw it."""

    __tablename__ = "availability"

    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))  # "up" or "down"
    since: Mapped[datetime] = mapped_column(default=utcnow)
    last_check: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    # The state last notified (log line, webhook): a change is notified once, after its delay.
    notified_status: Mapped[str] = mapped_column(String(8), default="")


class AvailabilityEvent(Base):
    """One change of an instance's availability: the up/down history."""

    __tablename__ = "availability_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"), index=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text, default="")


class ResourceLog(Base):
    """A log line of one instance, kept RESOURCE_LOG_RETENTION_DAYS, already redacted."""

    __tablename__ = "resource_log"
    __table_args__ = (Index("ix_resource_log_instance_id_timestamp", "instance_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    level: Mapped[int] = mapped_column(Integer)  # logging's numeric levels, to filter by ">= WARNING"
    message: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    name_id: Mapped[str] = mapped_column(String(256), default="", index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Record(Base):
    """A JSON value a connector keeps between restarts (:mod:`passerelle.records`): its own
    small durable store, so that a plugin needs no table or migration of its own.
    ``expires`` (optional) makes the hourly retention purge delete it."""

    __tablename__ = "connector_record"
    __table_args__ = (UniqueConstraint("instance_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("connector_instance.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(nullable=True, default=None, index=True)
