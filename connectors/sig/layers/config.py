"""Configuration shared by the GIS layer connectors (``opengis``, ``arcgis``): named queries,
the geocoder used by ``sector``, outbound calls."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from passerelle import HttpConfig
from passerelle.text import TextTemplate

__all__ = ["LayersConfig", "NamedQuery"]

QUERY_NAME = re.compile(r"^[\w-]{1,64}$")


class NamedQuery(BaseModel):
    """A layer's features fetched in full by a periodic job, kept on the hub and answered from a
    spatial index: what ``query/<name>/``, ``sector`` and ``nearest`` read."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(description="The layer: a WFS type name, an OGC API collection id, an ArcGIS layer id.")
    description: str = Field("", description="What the query is for (shown in the docs).")
    filters: dict[str, str] = Field(
        default_factory=dict, description="Only features whose properties have these values (compared as text)."
    )
    properties: list[str] | None = Field(None, description="The properties to keep; default: all.")
    id_template: str | None = Field(
        None, description="Template of each item's id over the properties, e.g. '{secteur}'; default: the feature id."
    )
    text_template: str = Field(
        "{id}", description="Template of each item's text over the properties, e.g. 'Secteur {nom} ({jour})'."
    )
    refresh_interval: int = Field(3600, ge=60, description="Seconds between two fetches of the layer.")

    @field_validator("id_template", "text_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            TextTemplate.parse(value)  # a malformed template is refused when configured, not when used
        return value


class LayersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: dict[str, NamedQuery] = Field(default_factory=dict, description="Named queries, keyed by name.")
    geocoder: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]*/[\w-]+$",
        description=(
            "The base-adresse instance ('base-adresse/<slug>') that turns the address given to sector into a "
            "point; without it, sector takes lat/lon only."
        ),
    )
    max_features: int = Field(
        50_000, ge=1, le=1_000_000, description="Most features a query may fetch (a safety cap against whole layers)."
    )
    http: HttpConfig = Field(default_factory=HttpConfig, description="Calls to the GIS server.")
    http_password: SecretStr | None = Field(None, description="HTTP Basic password (user name in http.username).")
    http_bearer_token: SecretStr | None = Field(None, description="Token sent as 'Authorization: Bearer …'.")

    @field_validator("queries")
    @classmethod
    def _names(cls, value: dict[str, NamedQuery]) -> dict[str, NamedQuery]:
        for name in value:
            if not QUERY_NAME.match(name):
                raise ValueError(f"query name {name!r} may only hold letters, digits, '_' and '-' (64 at most)")
        return value
