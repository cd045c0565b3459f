"""Persistence of the hub: SQLAlchemy models, engine and Alembic migrations."""

from passerelle.storage.database import make_engine, make_sessionmaker
from passerelle.storage.models import AccessRight, ApiUser, Base, ConfigVersion, ConnectorInstance

__all__ = ["AccessRight", "ApiUser", "Base", "ConfigVersion", "ConnectorInstance", "make_engine", "make_sessionmaker"]
