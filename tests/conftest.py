"""Every test that touches the database runs on SQLite, and on PostgreSQL when
``make test`` started one (``PASSERELLE_TEST_POSTGRESQL_URL``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

POSTGRESQL_URL = os.environ.get("PASSERELLE_TEST_POSTGRESQL_URL")
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRESQL_URL else [])


@pytest.fixture(params=DATABASES)
def hub_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        assert POSTGRESQL_URL is not None
        return POSTGRESQL_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
