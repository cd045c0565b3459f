"""The contract between the GIS connectors and the servers they read: one provider per protocol
(WFS, OGC API - Features, ArcGIS REST, a GeoJSON file), as pygeoapi has one per backend.

A provider answers two questions, always in WGS84 lon/lat whatever the server speaks:

- ``layers()``: what the service offers (from capabilities, collections, layer metadata);
- ``features(query)``: the features of one layer matching a :class:`LayerQuery`, all of them
  (the provider pages through the server: STARTINDEX/COUNT, ``next`` links,
  ``exceededTransferLimit``), up to ``query.limit`` or the provider's ``max_features`` safety
  cap, past which it raises :class:`TooManyFeatures` rather than answer a truncated layer.

Protocol errors become the hub's errors: ``UpstreamError`` with the server's own message
(an ``ows:ExceptionReport``, ArcGIS's ``{"error": …}`` in an HTTP 200, pygeoapi's JSON),
``UpstreamUnavailable`` for timeouts and unreachable servers (from the outbound client), and
``PermissionDenied``-like ``UpstreamError`` for token refusals (ArcGIS 498/499).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from connectors.sig.layers.features import Feature
from passerelle import UpstreamError

__all__ = ["DEFAULT_MAX_FEATURES", "FeatureBatch", "LayerInfo", "LayerQuery", "Provider", "TooManyFeatures"]

DEFAULT_MAX_FEATURES = 50_000  # a named query of a town's layer is a few thousand features at most


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer (feature type, collection, ArcGIS layer) as ``layers()`` lists it."""

    name: str  # what a query names it by: the WFS type name, the collection id, the ArcGIS layer id
    title: str = ""
    description: str = ""
    geometry_type: str | None = None  # "Point", "Polygon"…, when the service says
    bbox: tuple[float, float, float, float] | None = None  # WGS84 west, south, east, north
    fields: tuple[str, ...] = ()  # property names, when the service describes them


@dataclass(frozen=True, slots=True)
class LayerQuery:
    """Which features of ``layer`` to fetch. Every filter given must hold."""

    layer: str
    bbox: tuple[float, float, float, float] | None = None  # WGS84 west, south, east, north: intersecting it
    point: tuple[float, float] | None = None  # WGS84 lon, lat: features whose geometry covers it
    filters: Mapping[str, str] = field(default_factory=dict)  # property == value (compared as text)
    properties: tuple[str, ...] | None = None  # the properties to keep; None: all
    limit: int | None = None  # at most this many features; None: all of them, paging as needed


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    features: list[Feature]
    number_matched: int | None = None  # what the server says matched, when it says


class TooManyFeatures(UpstreamError):
    """The layer holds more features than the provider's cap: narrow the query (a filter, a box)."""


class Provider(Protocol):
    async def layers(self) -> list[LayerInfo]: ...

    async def features(self, query: LayerQuery) -> FeatureBatch: ...
