"""The ``arcgis`` connector type (ArcGIS REST FeatureServer / MapServer), registered by entry point."""

from connectors.sig.arcgis.connector import ArcGIS

__all__ = ["ArcGIS"]
