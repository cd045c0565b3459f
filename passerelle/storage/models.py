"""Tables of the hub core. Schema changes go through an Alembic migration
(``passerelle/storage/migrations/versions``); a test checks models and
migrations agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
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
