"""Build the bundled administrative referentials from ``@etalab/decoupage-administratif``.

Reproduce the bundle (from the repository root)::

    mkdir -p /tmp/dcp && (cd /tmp/dcp && npm pack @etalab/decoupage-administratif@6.0.0 && tar xzf *.tgz)
    .venv/bin/python connectors/sig/data/build_referentials.py /tmp/dcp/package/data

It writes ``communes.json.gz``, ``departements.json`` and ``regions.json`` next to this script,
keeping only what the ``cities``, ``departments`` and ``regions`` endpoints answer with.
The output is byte-for-byte reproducible (sorted rows, no timestamp in the gzip header).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Delegated and associated communes are former communes merged into a current one; geo.api.gouv.fr
# (which Passerelle loads) does not list them either, and their postcodes are the current commune's.
KEPT_TYPES = ("commune-actuelle", "arrondissement-municipal")


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def build_communes(source: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {
            "code": commune["code"],
            "nom": commune["nom"],
            "type": commune["type"],
            "departement": commune["departement"],
            "region": commune["region"],
            "codesPostaux": sorted(commune.get("codesPostaux", [])),
            # A few overseas territories have no population figure; 0 keeps the field an integer.
            "population": commune.get("population", 0),
        }
        for commune in source
        if commune["type"] in KEPT_TYPES
    ]
    return sorted(rows, key=lambda row: (row["code"], row["type"]))


def build_areas(source: list[dict[str, Any]], with_region: bool) -> list[dict[str, Any]]:
    keys = ("code", "nom", "zone", "region") if with_region else ("code", "nom", "zone")
    return sorted(({key: area[key] for key in keys} for area in source), key=lambda area: area["code"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the package's data/ directory")
    parser.add_argument("--output", type=Path, default=HERE)
    args = parser.parse_args(argv)

    def load(name: str) -> list[dict[str, Any]]:
        return json.loads((args.source / name).read_text(encoding="utf-8"))

    communes = _dump(build_communes(load("communes.json")))
    (args.output / "communes.json.gz").write_bytes(gzip.compress(communes, compresslevel=9, mtime=0))
    (args.output / "departements.json").write_bytes(_dump(build_areas(load("departements.json"), with_region=True)))
    (args.output / "regions.json").write_bytes(_dump(build_areas(load("regions.json"), with_region=False)))


if __name__ == "__main__":
    main()
