"""The ``opengis`` connector type (WFS 2.0/1.1.0, OGC API - Features, GeoJSON files), registered by entry point."""

from connectors.sig.opengis.connector import OpenGIS

__all__ = ["OpenGIS"]
