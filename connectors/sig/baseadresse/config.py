"""Configuration of a ``base-adresse`` instance."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from passerelle import HttpConfig

__all__ = ["DEFAULT_SERVICE_URL", "Backend", "BaseAdresseConfig"]

DEFAULT_SERVICE_URL = "https://data.geopf.fr/geocodage/"
Backend = Literal["local", "remote"]


class BaseAdresseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(
        default_factory=list,
        description=(
            "Address files of the embedded index: paths on the hub's machines or http(s) URLs, each a BAN CSV "
            "(adresses-XX.csv[.gz]), a BAL 1.3/1.4 CSV, an addok NDJSON export or the normalised CSV "
            "(id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat). Empty: no embedded index."
        ),
    )
    service_url: str = Field(
        DEFAULT_SERVICE_URL,
        description=(
            "Base URL of the remote geocoder (the Géoplateforme, a BAN API or a self-hosted addok); "
            "search/ and reverse/ are appended."
        ),
    )
    backends: list[Backend] = Field(
        default_factory=lambda: ["local", "remote"],
        min_length=1,
        description=(
            "Backends to ask, in order; the next one answers when one is unavailable (index not built yet, "
            "geocoder down or refusing). 'local' is skipped while the instance has no sources."
        ),
    )
    api_geo_url: str | None = Field(
        None,
        description=(
            "Base URL of the API Découpage administratif (https://geo.api.gouv.fr/) to refresh the communes, "
            "départements and régions from, daily; empty: the INSEE lists bundled with the hub."
        ),
    )
    rate_limit: float = Field(
        50,
        gt=0,
        le=1000,
        description="Most calls per second to the remote geocoder from one hub process (the Géoplateforme allows 50).",
    )
    refresh_interval: int = Field(
        86400,
        ge=60,
        description="Seconds between two checks that the sources changed (a changed source is indexed again).",
    )
    reverse_max_distance: float = Field(
        1000,
        gt=0,
        description=(
            "Metres: a reverse geocoding whose nearest indexed address is farther than this is outside the "
            "embedded index's area, and goes to the next backend."
        ),
    )
    id_retention_days: int = Field(
        90,
        ge=1,
        description="Days an address answered by the remote geocoder can still be looked up by its id.",
    )
    latitude: float | None = Field(
        None, ge=-90, le=90, description="Latitude of a point that searches favour, when the call gives none."
    )
    longitude: float | None = Field(
        None, ge=-180, le=180, description="Longitude of a point that searches favour, when the call gives none."
    )
    http: HttpConfig = Field(
        default_factory=HttpConfig, description="Calls to the remote geocoder and source downloads."
    )
    http_password: SecretStr | None = Field(None, description="HTTP Basic password (user name in http.username).")
    http_bearer_token: SecretStr | None = Field(None, description="Token sent as 'Authorization: Bearer …'.")

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        cleaned = [source.strip() for source in value]
        if any(not source for source in cleaned):
            raise ValueError("a source is a path or a URL, not an empty string")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a source is listed twice")
        return cleaned

    @field_validator("service_url", "api_geo_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("a base URL is an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("backends")
    @classmethod
    def _backends(cls, value: list[Backend]) -> list[Backend]:
        if len(set(value)) != len(value):
            raise ValueError("a backend is listed twice")
        return value

    @model_validator(mode="after")
    def _point(self) -> BaseAdresseConfig:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self

    @property
    def local_enabled(self) -> bool:
        return "local" in self.backends and bool(self.sources)
