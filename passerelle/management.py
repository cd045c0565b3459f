"""Changes to instances, API users and rights, shared by the admin API, the CLI
and imports. Every change validates first, writes in one transaction and bumps
the configuration version so that every hub process reloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.configfile import (
    ApiUserEntry,
    ConfigFileError,
    InstanceEntry,
    resolve_document,
    secret_env_name,
    validate_document,
)
from passerelle.connectors import PUBLIC, Connector, secret_fields
from passerelle.instances import parse_networks
from passerelle.secrets import SecretBox, SecretDecryptError, SecretKeyError, is_encrypted, scrub
from passerelle.storage.database import bump_config_version
from passerelle.storage.models import AccessRight, ApiUser, ConnectorInstance, utcnow

SecretMode = Literal["env", "omit"]


def stored_config(model: BaseModel) -> dict[str, Any]:
    """What goes in the database: the validated values, secrets included."""
    data = model.model_dump(mode="json", exclude_unset=True)
    for name in secret_fields(type(model)):
        value = getattr(model, name, None)
        if isinstance(value, SecretStr) and name in data:
            data[name] = value.get_secret_value()
    return data


def public_config(cls: type[Connector], config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The configuration without its secrets, and the names of the secrets that are set."""
    secrets = secret_fields(cls.Config)
    visible = {k: v for k, v in config.items() if k not in secrets}
    return visible, [name for name in secrets if config.get(name)]


def access_list(row: ConnectorInstance) -> list[dict[str, str]]:
    """An instance's rights as the import/export file writes them."""
    rights = ({"apiuser": a.apiuser.username, "perm": a.codename} for a in row.access)
    return sorted(rights, key=lambda a: (a["apiuser"], a["perm"]))


def as_utc(moment: datetime | None) -> datetime | None:
    """Naive datetimes (SQLite gives them back, a file may hold them) are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def validate_config(cls: type[Connector], config: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        model = cls.Config.model_validate(config)
    except ValidationError as exc:
        problems = [
            f"{where}, field 'config.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        # A connector's own validator may echo a value in its message: never a secret.
        secrets = [config.get(name) for name in secret_fields(cls.Config)]
        raise ConfigFileError(scrub("; ".join(problems), secrets)) from None
    return stored_config(model)


class Manager:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        types: dict[str, type[Connector]],
        secrets: SecretBox | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.types = types
        # Encrypts the secrets written (instance configs, API user keys): see passerelle.secrets.
        self.secrets = secrets

    def _box(self) -> SecretBox:
        if self.secrets is None:
            raise SecretKeyError("this change stores a secret: the Manager needs the hub's SecretBox")
        return self.secrets

    def seal(self, plaintext: str, previous: Any = None) -> str:
        """A secret as stored: encrypted (``previous`` kept when it holds the same secret)."""
        if not plaintext or is_encrypted(plaintext):
            return plaintext
        return self._box().reseal(plaintext, previous)

    def _seal_config(
        self, cls: type[Connector], config: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        if not any(isinstance(config.get(name), str) and config[name] for name in secret_fields(cls.Config)):
            return config
        return self._box().seal_config(cls.Config, config, previous)

    def reveal(self, stored: str, where: str) -> str:
        """A stored secret in clear (plaintext rows of earlier versions pass as they are)."""
        if not is_encrypted(stored):
            return stored
        try:
            return self._box().decrypt(stored)
        except SecretDecryptError as exc:
            raise ConfigFileError(f"{where}: the stored secret cannot be decrypted: {exc}") from None

    def connector_type(self, type_slug: str, where: str) -> type[Connector]:
        cls = self.types.get(type_slug)
        if cls is None:
            installed = ", ".join(sorted(self.types)) or "none"
            raise ConfigFileError(f"{where}: unknown connector type '{type_slug}' (installed: {installed})")
        return cls

    # -- import / export -------------------------------------------------

    async def import_document(
        self, data: dict[str, Any], *, base_dir: Path | None = None, dry_run: bool = False
    ) -> dict[str, list[str]]:
        """Create or update everything in the document, all or nothing.

        With ``dry_run`` everything is checked against the database, then rolled back.
        """
        document = validate_document(resolve_document(data, base_dir=base_dir))
        report: dict[str, list[str]] = {"created": [], "updated": []}
        async with self.sessionmaker() as session, session.begin():
            users = {u.username: u for u in (await session.scalars(select(ApiUser))).all()}
            for index, entry in enumerate(document.apiusers):
                where = f"API user {entry.username!r} (#{index + 1})"
                user = users.get(entry.username)
                label = f"apiuser {entry.username}"
                if user is None:
                    user = ApiUser(username=entry.username)
                    session.add(user)
                    users[entry.username] = user
                    report["created"].append(label)
                else:
                    report["updated"].append(label)
                self._fill_user(user, entry, entry.key, where)

            for index, entry in enumerate(document.instances):
                where = f"instance {entry.type}/{entry.slug} (#{index + 1})"
                row, created = await self._upsert_instance(session, entry, where)
                if "access" in entry.model_fields_set:
                    await self._replace_access(session, row, entry, users, where)
                report["created" if created else "updated"].append(f"instance {entry.type}/{entry.slug}")
            await session.flush()
            if dry_run:
                await session.rollback()
                return report
            await bump_config_version(session)
        return report

    def _fill_user(self, user: ApiUser, entry: ApiUserEntry, key: Any, where: str) -> None:
        user.fullname = entry.fullname
        user.description = entry.description
        user.keytype = entry.keytype
        user.ipsource = entry.ipsource
        if key is not None:
            user.key = self.seal(str(key), user.key)
        if entry.keytype != "" and not user.key:
            raise ConfigFileError(f"{where}, field 'key': a key is required for keytype {entry.keytype!r}")
        self._fill_previous_key(user, entry, where)
        user.previous_key = self.seal(user.previous_key or "")
        try:
            parse_networks(entry.ipsource)
        except ValueError as exc:
            raise ConfigFileError(f"{where}, field 'ipsource': {exc}") from None

    @staticmethod
    def _fill_previous_key(user: ApiUser, entry: ApiUserEntry, where: str) -> None:
        """Key rotation: a previous key left out keeps its stored value, an empty one ends the rotation."""
        if entry.previous_key is not None:
            user.previous_key = entry.previous_key
        if "previous_key_expires" in entry.model_fields_set:
            user.previous_key_expires = as_utc(entry.previous_key_expires)
        if not user.previous_key or entry.keytype == "":
            user.previous_key, user.previous_key_expires = "", None
        elif user.previous_key_expires is None:
            raise ConfigFileError(
                f"{where}, field 'previous_key_expires': required with a previous key (when it stops being accepted)"
            )

    async def rotate_key(self, username: str, key: str, grace: timedelta) -> ApiUser | None:
        """Make ``key`` the API user's key; the current one stays accepted for ``grace``
        (none: it stops at once). None when there is no such API user."""
        async with self.sessionmaker() as session, session.begin():
            user = await session.scalar(select(ApiUser).where(ApiUser.username == username))
            if user is None:
                return None
            if not user.keytype:
                raise ConfigFileError(f"API user {username!r} is open (no key): there is no key to rotate")
            if grace > timedelta(0):
                user.previous_key, user.previous_key_expires = user.key, utcnow() + grace
            else:
                user.previous_key, user.previous_key_expires = "", None
            user.key = self.seal(key)
            await bump_config_version(session)
            return user

    async def _upsert_instance(
        self, session: AsyncSession, entry: InstanceEntry, where: str
    ) -> tuple[ConnectorInstance, bool]:
        cls = self.connector_type(entry.type, where)
        row = await session.scalar(
            select(ConnectorInstance).where(ConnectorInstance.type == entry.type, ConnectorInstance.slug == entry.slug)
        )
        config = dict(entry.config)
        if row is not None:
            # A secret left out of the document (exported without secrets) keeps its stored value.
            for name in secret_fields(cls.Config):
                if name not in config and name in row.config:
                    config[name] = row.config[name]
        for name in secret_fields(cls.Config):
            if is_encrypted(config.get(name)):
                # Only the stored value sent back unchanged (a PATCH merges the stored config).
                if row is None or config[name] != row.config.get(name):
                    raise ConfigFileError(
                        f"{where}, field 'config.{name}': an encrypted value can only keep the stored one; "
                        "give the secret itself"
                    )
                config[name] = self.reveal(config[name], f"{where}, field 'config.{name}'")
        stored = validate_config(cls, config, where)
        created = row is None
        if row is None:
            row = ConnectorInstance(type=entry.type, slug=entry.slug, access=[])
            session.add(row)
        row.title = entry.title
        row.description = entry.description
        if "log_level" in entry.model_fields_set or created:
            # Left out of a document (one exported before log levels existed): unchanged.
            row.log_level = entry.log_level
        row.config = self._seal_config(cls, stored, None if created else row.config)
        return row, created

    async def _replace_access(
        self,
        session: AsyncSession,
        row: ConnectorInstance,
        entry: InstanceEntry,
        users: dict[str, ApiUser],
        where: str,
    ) -> None:
        cls = self.types[entry.type]
        known_perms = set(cls.permissions()) | {"can_access"}
        wanted: list[tuple[ApiUser, str]] = []
        for index, access in enumerate(entry.access):
            user = users.get(access.apiuser)
            if user is None:
                raise ConfigFileError(f"{where}, field 'access.{index}.apiuser': unknown API user {access.apiuser!r}")
            if access.perm == PUBLIC or access.perm not in known_perms:
                raise ConfigFileError(
                    f"{where}, field 'access.{index}.perm': unknown permission {access.perm!r} "
                    f"(this type uses: {', '.join(sorted(known_perms))})"
                )
            if (user, access.perm) not in wanted:
                wanted.append((user, access.perm))
        if row.id is not None:
            await session.execute(delete(AccessRight).where(AccessRight.instance_id == row.id))
        await session.flush()
        for user, perm in wanted:
            session.add(AccessRight(apiuser=user, instance=row, codename=perm))

    async def export_document(self, *, secrets: SecretMode = "env") -> dict[str, Any]:
        async with self.sessionmaker() as session:
            users = (await session.scalars(select(ApiUser).order_by(ApiUser.username))).all()
            rows = (
                await session.scalars(
                    select(ConnectorInstance).order_by(ConnectorInstance.type, ConnectorInstance.slug)
                )
            ).all()
        apiusers = []
        for user in users:
            item: dict[str, Any] = {
                "username": user.username,
                "fullname": user.fullname,
                "description": user.description,
                "keytype": user.keytype,
                "ipsource": user.ipsource,
            }
            if user.key and secrets == "env":
                item["key"] = {"$env": secret_env_name("apiuser", user.username, "key")}
            expires = as_utc(user.previous_key_expires)
            if user.previous_key and expires is not None and expires > utcnow():
                if secrets == "env":
                    item["previous_key"] = {"$env": secret_env_name("apiuser", user.username, "previous_key")}
                item["previous_key_expires"] = expires.isoformat()
            apiusers.append(item)
        instances = []
        for row in rows:
            instances.append(self.export_instance(row, secrets))
        return {"apiusers": apiusers, "instances": instances}

    def export_instance(self, row: ConnectorInstance, secrets: SecretMode) -> dict[str, Any]:
        cls = self.types.get(row.type)
        if cls is None:
            # The type is not installed here: nothing tells which fields are secret,
            # so no field is exported rather than risk one in clear.
            config: dict[str, Any] = {}
        else:
            config, set_secrets = public_config(cls, row.config)
            if secrets == "env":
                for name in set_secrets:
                    config[name] = {"$env": secret_env_name(row.type, row.slug, name)}
        return {
            "type": row.type,
            "slug": row.slug,
            "title": row.title,
            "description": row.description,
            "config": config,
            "access": access_list(row),
            "log_level": row.log_level or "",
        }

    # -- single changes (admin API, CLI) --------------------------------------

    async def get_instance(self, type_slug: str, slug: str) -> ConnectorInstance | None:
        async with self.sessionmaker() as session:
            return await session.scalar(
                select(ConnectorInstance).where(ConnectorInstance.type == type_slug, ConnectorInstance.slug == slug)
            )

    async def list_instances(self) -> list[ConnectorInstance]:
        async with self.sessionmaker() as session:
            statement = select(ConnectorInstance).order_by(ConnectorInstance.type, ConnectorInstance.slug)
            return list((await session.scalars(statement)).all())

    async def save_instance(self, entry: InstanceEntry) -> bool:
        """Create or update one instance; True when it was created."""
        data: dict[str, Any] = {"instances": [entry.model_dump(exclude_unset=True)]}
        report = await self.import_document(data)
        return bool(report["created"])

    async def delete_instance(self, type_slug: str, slug: str) -> bool:
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(ConnectorInstance).where(ConnectorInstance.type == type_slug, ConnectorInstance.slug == slug)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await bump_config_version(session)
                return True
            return False

    async def list_apiusers(self) -> list[ApiUser]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(ApiUser).order_by(ApiUser.username))).all())

    async def delete_apiuser(self, username: str) -> bool:
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(delete(ApiUser).where(ApiUser.username == username))
            if result.rowcount:  # type: ignore[attr-defined]
                await bump_config_version(session)
                return True
            return False


def check_document(data: dict[str, Any], types: dict[str, type[Connector]], base_dir: Path | None = None) -> None:
    """Check a document without a database: shape, types, configurations, references
    between API users and access lists. Raises ConfigFileError naming what is wrong."""
    document = validate_document(resolve_document(data, base_dir=base_dir))
    usernames = {u.username for u in document.apiusers}
    for index, entry in enumerate(document.instances):
        where = f"instance {entry.type}/{entry.slug} (#{index + 1})"
        cls = types.get(entry.type)
        if cls is None:
            installed = ", ".join(sorted(types)) or "none"
            raise ConfigFileError(f"{where}: unknown connector type '{entry.type}' (installed: {installed})")
        validate_config(cls, entry.config, where)
        perms = set(cls.permissions()) | {"can_access"}
        for position, access in enumerate(entry.access):
            if access.perm not in perms:
                raise ConfigFileError(
                    f"{where}, field 'access.{position}.perm': unknown permission {access.perm!r} "
                    f"(this type uses: {', '.join(sorted(perms))})"
                )
            if usernames and access.apiuser not in usernames:
                raise ConfigFileError(
                    f"{where}, field 'access.{position}.apiuser': API user {access.apiuser!r} is not in the document"
                )
