"""An example connector plugin for passerelle-hub (see docs/writing-a-connector.md)."""

from passerelle_example.opening_hours import OpeningHours

__all__ = ["OpeningHours"]
