from __future__ import annotations

import pytest

from passerelle.connectors import Connector
from passerelle.plugins import discover_types
from tests.passerelle.family_sample import FamilySample
from tests.passerelle.sample import Sample


@pytest.fixture
def hub_connector_types() -> dict[str, type[Connector]]:
    return {**discover_types(), "sample": Sample, "family-sample": FamilySample}
