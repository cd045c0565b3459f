"""GIS and address connectors."""
