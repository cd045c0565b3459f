"""What the GIS layer connectors (issue 6: opengis, arcgis) share: features, spatial index."""
