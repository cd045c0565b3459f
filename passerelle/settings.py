"""The one settings object of the hub.

Values come, from highest to lowest priority, from ``PASSERELLE_*`` environment
variables, then from a settings file (``--config FILE``, YAML or JSON, keys as
below without the prefix), then from the defaults. Every field is documented so
``passerelle settings`` (and the README) can list them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PASSERELLE_",
        extra="forbid",
        env_nested_delimiter="__",
        # Validation errors never echo values: several settings are secrets.
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(
        Path("var"),
        description="Directory for the SQLite database, uploaded files and indexes.",
    )
    database_url: str = Field(
        "",
        description=(
            "SQLAlchemy URL of the database. Empty means SQLite in DATA_DIR/passerelle.sqlite3. "
            "PostgreSQL: postgresql://user:password@host/dbname (the asyncpg driver is chosen)."
        ),
    )
    auto_migrate: bool | None = Field(
        None,
        description=(
            "Apply database migrations when `serve` starts. Default: yes on SQLite, no elsewhere "
            "(run `passerelle migrate` as a deployment step)."
        ),
    )
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `serve` listens on.")
    base_url: str = Field(
        "",
        description="Public URL of the hub, used in documentation links. Empty: taken from each request.",
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Key used to derive encryption keys for secrets at rest. Set it in production.",
    )
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted by the admin API under /manage/api/ (comma-separated in the environment).",
    )
    config_refresh_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between checks that another process changed instances or API users.",
    )
    load_plugins: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Allow-list of connector type slugs to load (all installed types when unset).",
    )
    run_periodic_jobs: bool = Field(
        True,
        description="Run the connectors' periodic jobs (refreshes, imports) in this process.",
    )
    log_level: str = Field("INFO", description="Level of the structured logs on stdout.")
    log_format: str = Field("json", description="`json` (one JSON object per line) or `console`.")
    max_body_size: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body accepted, in bytes.")
    known_services: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "Trusted Publik services, as Passerelle's KNOWN_SERVICES: a mapping of `orig` to the shared "
            "secret (JSON in the environment). A request signed by one of them is allowed on every "
            "instance and endpoint, without an API user. Hobo's nested shape "
            "(`{type: {slug: {orig, secret, …}}}`) is accepted too."
        ),
    )
    signature_max_age: int = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds a Publik signature's timestamp may be in the past or in the future.",
    )
    redis_url: str = Field(
        "",
        description=(
            "Redis URL (redis://host:6379/0) for the signature nonces shared by every hub process. "
            "Empty: they are kept in the database."
        ),
    )

    cache_url: str = Field(
        "",
        description=(
            "Redis URL (redis://host:6379/1) of the response cache shared by every hub process. "
            "Empty: each process keeps its own cache in memory, bounded by CACHE_MAX_BYTES."
        ),
    )
    cache_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Size bound of the in-memory response cache, in bytes (0 disables it).",
    )
    cache_stale_duration: int = Field(
        86400,
        ge=0,
        description=(
            "Seconds an expired cached answer is kept to be served, flagged as stale, when the "
            "application fails (stale-if-error). 0 disables stale answers."
        ),
    )
    thread_pool_size: int = Field(
        8,
        ge=1,
        le=256,
        description="Threads running synchronous libraries (zeep, parsers); calls beyond it wait in a queue.",
    )
    run_jobs: bool = Field(
        True,
        description=(
            "Run queued jobs in this `serve` process. Turn off when separate `passerelle worker` processes run them."
        ),
    )
    job_concurrency: int = Field(4, ge=1, le=256, description="Queued jobs a process runs at the same time.")
    job_lease: int = Field(
        60,
        ge=5,
        description=(
            "Seconds a running job is reserved by its process; renewed while it runs. A job whose "
            "process died is run again once its lease expires."
        ),
    )
    job_max_attempts: int = Field(5, ge=1, description="Default number of attempts of a queued job before it fails.")
    availability_interval: int = Field(
        300,
        ge=10,
        description="Seconds between two availability checks of an instance.",
    )
    availability_down_delay: int = Field(
        0,
        ge=0,
        description="Seconds an instance must stay down before the change is notified.",
    )
    availability_up_delay: int = Field(
        0,
        ge=0,
        description="Seconds an instance must stay up again before the recovery is notified.",
    )
    availability_webhook_url: str = Field(
        "",
        description="URL receiving a JSON POST on each notified change of availability (empty: log line only).",
    )
    resource_log_retention_days: int = Field(
        7,
        ge=1,
        description="Days the per-instance resource logs are kept in the database.",
    )
    job_retention_days: int = Field(
        30,
        ge=1,
        description="Days finished jobs (done, failed, cancelled) are kept before they are deleted.",
    )
    resource_log_level: str = Field(
        "INFO",
        description="Default level of the per-instance resource logs (an instance may set its own).",
    )
    metrics_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description=(
            "Networks allowed to read /metrics without an admin token (comma-separated CIDR list in the environment)."
        ),
    )
    shutdown_grace: float = Field(
        20.0,
        ge=0,
        description=(
            "Seconds requests in flight and running jobs get to finish when the hub stops; jobs still "
            "running after it are released to be run again."
        ),
    )

    @field_validator("admin_tokens", "load_plugins", "metrics_allowed_networks", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("known_services", mode="before")
    @classmethod
    def _flatten_known_services(cls, value: Any) -> Any:
        # Hobo writes {"wcs": {"eservices": {"orig": ..., "secret": ..., "url": ...}}}: keep orig -> secret.
        if not isinstance(value, dict):
            return value
        flat: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, dict):
                for service in item.values():
                    if isinstance(service, dict) and service.get("orig") and service.get("secret"):
                        flat[service["orig"]] = service["secret"]
                    else:
                        raise ValueError(
                            f"known_services[{name!r}]: expected orig -> secret, or Hobo's "
                            "{type: {slug: {orig, secret}}}"
                        )
            else:
                flat[name] = item
        for orig, secret in flat.items():
            if not str(secret.get_secret_value() if isinstance(secret, SecretStr) else secret or ""):
                # An empty HMAC key would let anyone sign as this service.
                raise ValueError(f"known_services[{orig!r}]: the secret is empty")
        return flat

    @field_validator("log_level", "resource_log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}: use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value not in ("json", "console"):
            raise ValueError("log_format must be 'json' or 'console'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over a settings file, which is passed as init values.
        return (env_settings, init_settings)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(read_settings_file(Path(config_file)))
        values.update(overrides)
        return cls(**values)

    @property
    def resolved_database_url(self) -> str:
        """The URL with an async driver, as SQLAlchemy's async engine needs."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'passerelle.sqlite3').resolve()}"
        for prefix, replacement in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if url.startswith(prefix):
                return replacement + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


def read_settings_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read settings file {path}: {exc.strerror}") from exc
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(
            f"settings file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"settings file {path} must hold a mapping of setting names to values")
    return values
