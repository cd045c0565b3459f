"""Simulator of ArcGIS REST services (ArcGIS Server / ArcGIS Online), FeatureServer and MapServer."""

from __future__ import annotations

from .app import make_app
from .model import Field, Layer, Service, load_services, points_layer

__all__ = ["Field", "Layer", "Service", "load_services", "make_app", "points_layer"]
