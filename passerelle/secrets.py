"""Secrets at rest: configuration secrets and API user keys, encrypted in the database.

What is encrypted: the ``SecretStr`` fields of every instance configuration (see
:func:`passerelle.connectors.secret_fields`) and API users' ``key`` and
``previous_key``. :mod:`passerelle.management` encrypts them when it writes;
:mod:`passerelle.instances` decrypts them when it builds connectors and callers.

How: AES-256-GCM with a key derived by HKDF-SHA256 from the ``secret_key``
setting (``PASSERELLE_SECRET_KEY``). A stored value reads::

    enc:v1:<key id>:<base64url(nonce + ciphertext + tag)>

The key id (8 hex digits, derived separately, revealing nothing of the key)
tells a wrong key from a damaged value. A value without the ``enc:v1:`` prefix
is plaintext written by an earlier version: it is read as is and encrypted the
next time it is written (or at once by ``passerelle secrets rekey``).

Where the key comes from (:meth:`SecretBox.from_settings`): the setting when it
is set; else, on SQLite only, ``<data_dir>/secret.key``, generated once (mode
0600) so that ``make run`` needs no set-up; else (PostgreSQL: several processes
must share one key) the hub refuses to start, asking for PASSERELLE_SECRET_KEY.

Errors name the instance or API user, never a plaintext nor a ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets as random
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel

from passerelle.connectors import secret_fields

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from passerelle.connectors import Connector
    from passerelle.settings import Settings

__all__ = [
    "KEY_FILE",
    "PREFIX",
    "SecretBox",
    "SecretDecryptError",
    "SecretKeyError",
    "generate_key",
    "is_encrypted",
    "rekey",
]

# The standard library's logging: in the CLI a warning then goes to stderr (never
# into an export written on stdout); under `serve` it is routed through structlog.
logger = logging.getLogger("passerelle.secrets")

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"
_NONCE = 12
_SALT = b"passerelle-hub secrets"


class SecretKeyError(RuntimeError):
    """No usable key: the message says what to set."""


class SecretDecryptError(ValueError):
    """A stored secret cannot be decrypted (wrong key or damaged value)."""


def generate_key() -> str:
    """A new random key, as PASSERELLE_SECRET_KEY takes it (256 bits, URL-safe)."""
    return random.token_urlsafe(32)


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _derive(material: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(material)


class SecretBox:
    """Encrypts and decrypts stored secrets with one key."""

    def __init__(self, key: str | bytes) -> None:
        material = key.encode() if isinstance(key, str) else key
        if not material:
            raise SecretKeyError("the secret key is empty")
        self._aead = AESGCM(_derive(material, b"secrets at rest v1"))
        self.key_id = _derive(material, b"key id v1")[:4].hex()

    def __repr__(self) -> str:
        return f"<SecretBox key id {self.key_id}>"

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(load_key(settings))

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), PREFIX.encode())
        return f"{PREFIX}{self.key_id}:{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"

    def decrypt(self, stored: str) -> str:
        """The plaintext of a stored value; a value without the prefix is returned as is."""
        if not is_encrypted(stored):
            return stored
        key_id, sep, payload = stored[len(PREFIX) :].partition(":")
        if not sep:
            raise SecretDecryptError("the stored value is damaged")
        if key_id != self.key_id:
            raise SecretDecryptError(
                f"it was encrypted with another key (key id {key_id}, this hub's key id is {self.key_id}): "
                "PASSERELLE_SECRET_KEY is not the key it was written with"
            )
        try:
            sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            if len(sealed) <= _NONCE:
                raise ValueError("too short")
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], PREFIX.encode()).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error, UnicodeDecodeError):
            raise SecretDecryptError("the stored value is damaged") from None

    def reseal(self, plaintext: str, previous: Any = None) -> str:
        """``plaintext`` encrypted; ``previous`` (the stored value) is kept when it already
        holds the same plaintext under this key, so an unchanged secret is not rewritten."""
        if is_encrypted(previous) and previous.split(":", 3)[2] == self.key_id:
            with contextlib.suppress(SecretDecryptError):
                if self.decrypt(previous) == plaintext:
                    return str(previous)
        return self.encrypt(plaintext)

    # -- instance configurations ----------------------------------------------------

    def seal_config(
        self, model: type[BaseModel], config: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A copy of ``config`` (plaintext, as validated) with its secret fields encrypted."""
        sealed = dict(config)
        for name in secret_fields(model):
            value = sealed.get(name)
            if isinstance(value, str) and value:
                sealed[name] = self.reseal(value, (previous or {}).get(name))
        return sealed

    def open_config(self, model: type[BaseModel], config: dict[str, Any]) -> dict[str, Any]:
        """A copy of a stored ``config`` with its secret fields decrypted.

        Raises :class:`SecretDecryptError` naming the field (never its value)."""
        opened = dict(config)
        for name in secret_fields(model):
            value = opened.get(name)
            if isinstance(value, str):
                try:
                    opened[name] = self.decrypt(value)
                except SecretDecryptError as exc:
                    raise SecretDecryptError(f"secret field '{name}' cannot be decrypted: {exc}") from None
        return opened


# -- where the key comes from ---------------------------------------------------------


def load_key(settings: Settings) -> str:
    configured = settings.secret_key.get_secret_value()
    if configured:
        return configured
    if not settings.is_sqlite:
        raise SecretKeyError(
            "PASSERELLE_SECRET_KEY is not set: it is required with a database other than SQLite, where every "
            "hub process must share one key to read the secrets stored in the database. Generate one with "
            "`passerelle secrets generate-key` and set it in every process's environment."
        )
    return key_from_file(settings.data_dir / KEY_FILE)


def key_from_file(path: Path) -> str:
    """The key in ``path``, created (mode 0600) with a random key if missing."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_key_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a key file"
        raise SecretKeyError(f"cannot read the secret key file {path}: {reason}") from None
    if not text:
        raise SecretKeyError(
            f"the secret key file {path} is empty: restore it from a backup (the secrets stored with it "
            "cannot be read without it), or remove it to generate a new key"
        )
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            logger.warning("the secret key file %s is readable by other users: chmod 600 it", path)
    return text


def _create_key_file(path: Path) -> str:
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a second process
    # starting at the same moment either wins the link or reads the winner's key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{random.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return key_from_file(path)
    except OSError as exc:
        raise SecretKeyError(f"cannot create the secret key file {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    logger.warning(
        "PASSERELLE_SECRET_KEY is not set: generated a secret key in %s to encrypt the secrets stored in the "
        "database. Back it up with the database; in production set PASSERELLE_SECRET_KEY instead.",
        path,
    )
    return key


# -- re-encryption ----------------------------------------------------------------------


@dataclass
class RekeyReport:
    instances: list[str] = field(default_factory=list)
    apiusers: list[str] = field(default_factory=list)
    values: int = 0

    def summary(self, dry_run: bool) -> str:
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        return f"{verb} {self.values} secret values: {len(self.instances)} instances, {len(self.apiusers)} API users"


def _open_any(value: str, boxes: Iterable[SecretBox], where: str) -> str:
    if not is_encrypted(value):
        return value
    key_id = value[len(PREFIX) :].split(":", 1)[0]
    for box in boxes:
        if box.key_id == key_id:
            try:
                return box.decrypt(value)
            except SecretDecryptError as exc:
                raise SecretDecryptError(f"{where}: {exc}") from None
    raise SecretDecryptError(
        f"{where}: encrypted with another key than those given (key id {key_id}); pass the old key with --old-key-file"
    )


async def rekey(
    sessionmaker: async_sessionmaker[AsyncSession],
    types: dict[str, type[Connector]],
    box: SecretBox,
    old_boxes: Iterable[SecretBox] = (),
    *,
    dry_run: bool = False,
) -> RekeyReport:
    """Re-encrypt every stored secret with ``box``, all or nothing.

    Values encrypted with ``box`` or one of ``old_boxes`` are re-encrypted with
    ``box``; plaintext secrets (earlier versions) are encrypted. Running it twice
    is harmless. Raises :class:`SecretDecryptError` naming the first value that
    no given key opens (nothing is then changed)."""
    from sqlalchemy import select

    from passerelle.storage.database import bump_config_version
    from passerelle.storage.models import ApiUser, ConnectorInstance

    boxes = [box, *old_boxes]
    report = RekeyReport()
    async with sessionmaker() as session, session.begin():
        for row in (await session.scalars(select(ConnectorInstance).order_by(ConnectorInstance.id))).all():
            cls = types.get(row.type)
            names = set(secret_fields(cls.Config)) if cls is not None else set()
            # Without the type, the encrypted values still say what they are.
            names |= {name for name, value in row.config.items() if is_encrypted(value)}
            config = dict(row.config)
            changed = 0
            for name in sorted(names):
                value = config.get(name)
                if not isinstance(value, str) or not value:
                    continue
                plaintext = _open_any(value, boxes, f"instance {row.type}/{row.slug}, secret field '{name}'")
                config[name] = box.encrypt(plaintext)
                changed += 1
            if changed:
                row.config = config
                report.instances.append(f"{row.type}/{row.slug}")
                report.values += changed
        for user in (await session.scalars(select(ApiUser).order_by(ApiUser.username))).all():
            changed = 0
            for attribute in ("key", "previous_key"):
                value = getattr(user, attribute, None)
                if not isinstance(value, str) or not value:
                    continue
                plaintext = _open_any(value, boxes, f"API user {user.username!r}, {attribute.replace('_', ' ')}")
                setattr(user, attribute, box.encrypt(plaintext))
                changed += 1
            if changed:
                report.apiusers.append(user.username)
                report.values += changed
        if dry_run:
            await session.rollback()
            return report
        await bump_config_version(session)
    return report


def scrub(text: str, values: Iterable[Any]) -> str:
    """``text`` with each of ``values`` (secrets) replaced by ``[secret]``: for messages
    built by code that may echo what it was given (a connector's validator, say)."""
    for value in sorted({v for v in values if isinstance(v, str) and len(v) >= 3}, key=len, reverse=True):
        text = text.replace(value, "[secret]")
    return text
