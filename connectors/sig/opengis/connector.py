"""The ``opengis`` connector type: a town's GIS layers served over WFS (2.0.0 or 1.1.0), OGC API -
Features, or as GeoJSON files on the hub's machine, with Passerelle's ``opengis`` uses (features
of a layer, named queries for maps and data sources) and the sector lookup.

Every endpoint is the shared one of :class:`connectors.sig.layers.connector.LayersConnector`;
this module only configures the server and picks the provider of its protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from connectors.sig.layers.config import LayersConfig
from connectors.sig.layers.connector import LayersConnector
from connectors.sig.layers.geojsonfile import GeoJSONFiles
from connectors.sig.layers.ogcapi import OGCAPIProvider
from connectors.sig.layers.provider import Provider
from connectors.sig.layers.wfs import WFSProvider

__all__ = ["OpenGIS", "OpenGISConfig"]


class OpenGISConfig(LayersConfig):
    service_url: str = Field(
        description=(
            "The server: a WFS endpoint (with its ?map=… or other fixed parameters), an OGC API - Features "
            "landing page, or for the geojson protocol a .geojson file or a directory of them on the hub's machine."
        )
    )
    protocol: Literal["wfs", "ogcapi", "geojson"] = Field("wfs", description="How to talk to the server.")
    wfs_version: Literal["2.0.0", "1.1.0"] = Field("2.0.0", description="WFS version (wfs protocol).")
    crs: int = Field(
        4326,
        description=(
            "EPSG code to ask features in (wfs protocol): 4326, or the server's native projection (2154, 3857…), "
            "reprojected to WGS84 on the hub."
        ),
    )
    page_size: int = Field(500, ge=1, le=10000, description="Features asked per request when paging.")
    id_property: str | None = Field(
        None,
        description=(
            "The property holding each feature's identifier, for servers that send features without an id "
            "(MapServer's GeoJSON, most files; wfs and geojson protocols); default: the feature's own id, "
            "else '<layer>.<n>'."
        ),
    )

    @model_validator(mode="after")
    def _url(self) -> OpenGISConfig:
        is_http = self.service_url.startswith(("http://", "https://"))
        if self.protocol == "geojson" and is_http:
            raise ValueError("the geojson protocol reads files on the hub's machine: give a path, not a URL")
        if self.protocol != "geojson" and not is_http:
            raise ValueError(f"the {self.protocol} protocol needs an http:// or https:// service_url")
        return self


class OpenGIS(LayersConnector):
    slug = "opengis"
    title = "OGC web services (WFS, OGC API - Features)"
    category = "Geographic information system"
    description = (
        "Layers of a GIS server over WFS 2.0/1.1.0 or OGC API - Features (or GeoJSON files): features by box, "
        "point and attributes, named queries kept on the hub for maps and data sources, and 'which sector serves "
        "this address' lookups answered from a spatial index."
    )
    Config = OpenGISConfig
    config: OpenGISConfig

    def build_provider(self) -> Provider:
        config = self.config
        if config.protocol == "geojson":
            return GeoJSONFiles(
                Path(config.service_url), max_features=config.max_features, id_property=config.id_property
            )
        if config.protocol == "ogcapi":
            return OGCAPIProvider(
                self.http, config.service_url, page_size=config.page_size, max_features=config.max_features
            )
        return WFSProvider(
            self.http,
            config.service_url,
            version=config.wfs_version,
            crs=config.crs,
            page_size=config.page_size,
            max_features=config.max_features,
            id_property=config.id_property,
        )
