"""Configuration as files: the import/export document and its validation.

Shape (JSON or YAML)::

    {"apiusers": [{"username", "fullname", "description", "keytype", "key",
                   "previous_key", "previous_key_expires", "ipsource"}],
     "instances": [{"type", "slug", "title", "description", "config",
                    "access": [{"apiuser", "perm"}], "log_level"}]}

Secret values may be written ``{"$env": "VAR"}`` (read from the environment at
import) or ``{"$file": "path"}`` (read from a file, relative to the document).
Errors name the instance (or API user) and the field, so a person can fix them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from passerelle.auth.access import KEYTYPES
from passerelle.settings import LOG_LEVELS

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"


class ConfigFileError(ValueError):
    """The document cannot be imported; the message says where and why."""


class AccessEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiuser: str = Field(description="Username of the API user receiving the right.")
    perm: str = Field("can_access", description="Permission codename (see the type's `permissions`).")


class InstanceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="Connector type slug, e.g. `csvdatasource`.")
    slug: str = Field(pattern=SLUG_PATTERN, description="Instance slug: lower-case letters, digits, '-' and '_'.")
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    access: list[AccessEntry] = Field(default_factory=list)
    log_level: str = Field(
        "",
        description="Lowest level of the instance's resource logs kept in the database (DEBUG, INFO, WARNING, "
        "ERROR, CRITICAL); empty: the hub's RESOURCE_LOG_LEVEL. Left out: unchanged.",
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value and value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}: use one of {', '.join(LOG_LEVELS)}, or '' for the default")
        return value.upper()


class ApiUserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=128)
    fullname: str = ""
    description: str = ""
    keytype: str = Field("", description="'' (open), 'API' (static key) or 'SIGN' (Publik signature).")
    key: str | None = Field(None, description="The key or shared secret; never exported in clear.")
    previous_key: str | None = Field(
        None,
        description="During a key rotation, the key being replaced, accepted until previous_key_expires "
        "(empty ends the rotation). Never exported in clear.",
    )
    previous_key_expires: datetime | None = Field(
        None, description="When the previous key stops being accepted (ISO 8601, UTC unless an offset is given)."
    )
    ipsource: str = Field("", description="Comma-separated CIDR allow-list; empty allows every address.")

    @field_validator("keytype")
    @classmethod
    def _keytype(cls, value: str) -> str:
        if value not in KEYTYPES:
            raise ValueError(f"keytype must be one of {', '.join(repr(k) for k in KEYTYPES)}")
        return value


class ConfigDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiusers: list[ApiUserEntry] = Field(default_factory=list)
    instances: list[InstanceEntry] = Field(default_factory=list)


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from None
    return parse_document(text, json_format=path.suffix.lower() == ".json", origin=str(path))


def parse_document(text: str, *, json_format: bool = False, origin: str = "document") -> dict[str, Any]:
    try:
        data = json.loads(text) if json_format else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{origin} is not valid {'JSON' if json_format else 'YAML'}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{origin} must be a mapping with 'apiusers' and 'instances'")
    return data


def validate_document(data: dict[str, Any]) -> ConfigDocument:
    try:
        return ConfigDocument.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(describe_document_errors(data, exc)) from None


def describe_document_errors(data: dict[str, Any], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        lines.append(f"{locate(data, loc)}: {error['msg']}")
    return "; ".join(lines)


def locate(data: dict[str, Any], loc: list[Any]) -> str:
    """``instances[2].config.source`` becomes ``instance csvdatasource/musees, field config.source``."""
    if len(loc) >= 2 and loc[0] in ("instances", "apiusers") and isinstance(loc[1], int):
        items = data.get(loc[0]) or []
        item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
        if loc[0] == "instances":
            name = f"instance {item.get('type', '?')}/{item.get('slug', '?')} (#{loc[1] + 1})"
        else:
            name = f"API user {item.get('username', '?')!r} (#{loc[1] + 1})"
        field = ".".join(str(p) for p in loc[2:])
        return f"{name}, field '{field}'" if field else name
    return "field '" + ".".join(str(p) for p in loc) + "'"


def resolve_references(value: Any, *, base_dir: Path | None, where: str) -> Any:
    """Replace ``{"$env": VAR}`` and ``{"$file": path}`` anywhere in a value."""
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            name = value["$env"]
            if not isinstance(name, str) or name not in os.environ:
                raise ConfigFileError(f"{where}: environment variable {name!r} is not set")
            return os.environ[name]
        if set(value) == {"$file"}:
            file_path = Path(str(value["$file"]))
            if not file_path.is_absolute() and base_dir is not None:
                file_path = base_dir / file_path
            try:
                return file_path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise ConfigFileError(f"{where}: cannot read secret file {file_path}: {exc.strerror}") from None
        return {k: resolve_references(v, base_dir=base_dir, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, base_dir=base_dir, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def secret_env_name(type_slug: str, slug: str, field: str) -> str:
    """The environment variable an export names for a secret, e.g. PASSERELLE_SECRET_CSVDATASOURCE_MUSEES_PASSWORD."""
    parts = ("PASSERELLE_SECRET", type_slug, slug, field)
    return "_".join(p.upper().replace("-", "_") for p in parts)


def dump_document(document: dict[str, Any], *, yaml_format: bool) -> str:
    if yaml_format:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def resolve_document(data: dict[str, Any], *, base_dir: Path | None) -> dict[str, Any]:
    """The document with every ``$env``/``$file`` reference replaced by its value;
    errors name the instance or API user holding the reference."""
    resolved = dict(data)
    for section in ("apiusers", "instances"):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        resolved[section] = [
            resolve_references(item, base_dir=base_dir, where=locate(data, [section, index]))
            for index, item in enumerate(items)
        ]
    return resolved
