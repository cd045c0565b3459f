"""Fixtures for the csvdatasource tests: a small facilities file and instances on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.csvdatasource import CsvDataSource

# Unsorted, mixed case and accents, one row without an id: the fixture every
# data/ and query/ test reads. Sorted by folded text the ids are 3 7 2 4 5 1 6.
FACILITIES = """\
id,nom,code_postal,type,places
1,Piscine Jean Bouin,75016,piscine,250
2,École Émile Zola,05000,école,180
3,Bibliothèque Saint-Éloi,75012,bibliothèque,40
4,gymnase des Écrins,05000,gymnase,300
5,Piscine de la Bâtie,05230,piscine,120
6,Stade Zéphyr,05000,stade,1500
,Sans identifiant,05000,autre,0
7,Ecole Ampère,05000,école,"95,5"
"""
SORTED_IDS = ["3", "7", "2", "4", "5", "1", "6"]

MakeCsv = Callable[..., Awaitable[CsvDataSource]]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


@pytest.fixture
def facilities_file(tmp_path: Path) -> Path:
    path = tmp_path / "facilities.csv"
    path.write_text(FACILITIES, encoding="utf-8")
    return path


@pytest.fixture
def make_csv(make_instance: Callable[..., Awaitable[Any]], facilities_file: Path) -> MakeCsv:
    """An instance on the facilities file (or ``source=``), id/text from id/nom by default."""

    async def make(slug: str = "test", **config: Any) -> CsvDataSource:
        config.setdefault("source", str(facilities_file))
        config.setdefault("id_column", "id")
        config.setdefault("text_column", "nom")
        connector = await make_instance("csvdatasource", slug, config=config)
        assert isinstance(connector, CsvDataSource)
        return connector

    return make


async def get_json(client: Any, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    payload = await response.json()
    assert response.status == status, payload
    return payload
