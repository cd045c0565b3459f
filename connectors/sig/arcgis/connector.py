"""The ``arcgis`` connector type: layers of an ArcGIS Server or ArcGIS Online FeatureServer /
MapServer, read through ``query`` (Passerelle's ``arcgis``), with named queries and the sector
lookup of :class:`connectors.sig.layers.connector.LayersConnector`."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from connectors.sig.layers.arcgis import ArcGISProvider
from connectors.sig.layers.config import LayersConfig
from connectors.sig.layers.connector import LayersConnector
from connectors.sig.layers.provider import Provider

__all__ = ["ArcGIS", "ArcGISConfig"]


class ArcGISConfig(LayersConfig):
    service_url: str = Field(
        description="The service: https://…/arcgis/rest/services/<name>/FeatureServer (or MapServer)."
    )
    token: SecretStr | None = Field(None, description="ArcGIS token, sent with every query (never shown nor logged).")
    page_size: int | None = Field(
        None, ge=1, le=10000, description="Features asked per request; default: the layer's maxRecordCount."
    )

    @field_validator("service_url")
    @classmethod
    def _service(cls, value: str) -> str:
        stripped = value.rstrip("/")
        if not value.startswith(("http://", "https://")) or not stripped.endswith(("/FeatureServer", "/MapServer")):
            raise ValueError("the service URL is an http(s) URL ending with /FeatureServer or /MapServer")
        return stripped


class ArcGIS(LayersConnector):
    slug = "arcgis"
    title = "ArcGIS REST services"
    category = "Geographic information system"
    description = (
        "Layers of an ArcGIS FeatureServer or MapServer: features by box, point and attributes, named queries "
        "kept on the hub for maps and data sources, and 'which sector serves this address' lookups."
    )
    Config = ArcGISConfig
    config: ArcGISConfig

    def build_provider(self) -> Provider:
        token = self.config.token.get_secret_value() if self.config.token else None
        return ArcGISProvider(
            self.http,
            self.config.service_url,
            token=token or None,
            page_size=self.config.page_size,
            max_features=self.config.max_features,
        )
