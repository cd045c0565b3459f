"""The ``base-adresse`` connector type (address search), registered by entry point like any plugin."""

from connectors.sig.baseadresse.connector import BaseAdresse

__all__ = ["BaseAdresse"]
