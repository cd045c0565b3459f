"""The simulator's data: the INSEE referentials bundled in connectors/sig/data, in geo.api.gouv.fr's field names."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from connectors.sig.referentials import DATA_DIR
from passerelle.text import fold

Row = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    """Rows as geo.api.gouv.fr holds them: every field a route may answer, codes as strings.

    Each row also carries ``_folded``, its folded name for `nom=` searches, which is never answered.
    """

    communes: tuple[Row, ...]
    departements: tuple[Row, ...]
    regions: tuple[Row, ...]


def _with_folded(row: Row) -> Row:
    return {**row, "_folded": fold(row["nom"])}


def load_dataset(data_dir: Path | str = DATA_DIR) -> Dataset:
    """Read ``communes.json.gz``, ``departements.json`` and ``regions.json`` (connectors/sig/data/README.md)."""
    data_dir = Path(data_dir)
    communes = json.loads(gzip.decompress((data_dir / "communes.json.gz").read_bytes()))
    departements = json.loads((data_dir / "departements.json").read_text(encoding="utf-8"))
    regions = json.loads((data_dir / "regions.json").read_text(encoding="utf-8"))
    # A commune's zone is not in the bundle: geo.api.gouv.fr's is its department's (a collectivity's, overseas).
    zones = {row["code"]: row["zone"] for row in departements}
    return Dataset(
        communes=tuple(
            _with_folded(
                {
                    "nom": row["nom"],
                    "code": row["code"],
                    "type": row["type"],
                    "codeDepartement": row["departement"],
                    "codeRegion": row["region"],
                    "codesPostaux": list(row["codesPostaux"]),
                    "population": row["population"],
                    "zone": zones[row["departement"]],
                }
            )
            for row in communes
        ),
        departements=tuple(
            _with_folded({"nom": row["nom"], "code": row["code"], "codeRegion": row["region"], "zone": row["zone"]})
            for row in departements
        ),
        regions=tuple(_with_folded({"nom": row["nom"], "code": row["code"], "zone": row["zone"]}) for row in regions),
    )


@cache
def bundled_dataset() -> Dataset:
    """The bundled data, read once per process: the rows are never modified."""
    return load_dataset()
