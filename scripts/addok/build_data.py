"""Convert the BAN address sample of the tests into addok documents (NDJSON).

    python3 scripts/addok/build_data.py [FILE.csv[.gz] ...] > documents.ndjson

Input: the files given (default: tests/simulators/data/addresses-sample.csv), real BAN
rows normalised as ``id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat``
(plain or gzipped; bench/address passes ../shared/data/addresses/normalised/), and the
INSEE lists bundled in connectors/sig/data (department and region names, commune
populations). Output, in the shape of the BAN addok export: one ``street`` document
per street with its ``housenumbers``, and one ``municipality`` document per commune
(placed at the mean of its addresses: the sample has no town-hall position).
Standard library only: it runs with any Python 3.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "simulators" / "data" / "addresses-sample.csv"
REFERENTIALS = ROOT / "connectors" / "sig" / "data"
# Paris, Lyon and Marseille addresses: the city is the commune, the arrondissement is the district.
DISTRICT = re.compile(r"^(Paris|Lyon|Marseille) \d+(er|e) Arrondissement$")


def load_json(name: str) -> list[dict]:
    path = REFERENTIALS / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def importance(population: int) -> float:
    return round(min(1.0, math.log10(population + 1) / 6.5), 4)


def build(*samples: Path) -> list[dict]:
    departments = {d["code"]: d for d in load_json("departements.json")}
    regions = {r["code"]: r["nom"] for r in load_json("regions.json")}
    communes = {c["code"]: c for c in load_json("communes.json.gz")}

    streets: dict[tuple[str, str, str], dict] = defaultdict(dict)
    cities: dict[str, dict] = {}
    for sample in samples or (SAMPLE,):
        opener = gzip.open if sample.suffix == ".gz" else open
        with opener(sample, "rt", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter=";"):
                key = (row["code_insee"], row["code_postal"], row["nom_voie"])
                number = row["numero"].lstrip("0") or "0"
                if row["suffixe"]:
                    number += " " + row["suffixe"]
                streets[key][number] = {"id": row["id"], "lon": float(row["lon"]), "lat": float(row["lat"])}
                cities.setdefault(row["code_insee"], {"name": row["nom_commune"], "postcode": row["code_postal"]})
    points: dict[str, list[dict]] = defaultdict(list)
    for (code, _, _), hns in streets.items():
        points[code].extend(hns.values())

    def place(citycode: str) -> dict:
        name = cities[citycode]["name"]
        match = DISTRICT.match(name)
        department = departments[citycode[:3] if citycode.startswith("97") else citycode[:2]]
        context = f"{department['code']}, {department['nom']}, {regions[department['region']]}"
        fields = {"citycode": citycode, "city": match.group(1) if match else name, "context": context}
        if match:
            fields["district"] = name
        return fields

    documents = []
    for citycode in sorted(cities):
        # A commune merged since the source's date (BANO 2015) keeps the name the source gives.
        commune = communes.get(citycode, {"nom": cities[citycode]["name"]})
        population = commune.get("population") or 0
        documents.append(
            {
                "id": citycode,
                "type": "municipality",
                "name": commune["nom"],
                "postcode": cities[citycode]["postcode"],
                **place(citycode),
                "lon": round(sum(p["lon"] for p in points[citycode]) / len(points[citycode]), 6),
                "lat": round(sum(p["lat"] for p in points[citycode]) / len(points[citycode]), 6),
                "population": population,
                "importance": importance(population),
            }
        )
    for (citycode, postcode, name), housenumbers in sorted(streets.items()):
        first = next(iter(housenumbers.values()))
        documents.append(
            {
                "id": first["id"].rsplit("_", 1)[0],
                "type": "street",
                "name": name,
                "postcode": postcode,
                **place(citycode),
                "lon": round(sum(h["lon"] for h in housenumbers.values()) / len(housenumbers), 6),
                "lat": round(sum(h["lat"] for h in housenumbers.values()) / len(housenumbers), 6),
                "importance": importance(communes.get(citycode, {}).get("population") or 0),
                "housenumbers": housenumbers,
            }
        )
    return documents


def main() -> None:
    for document in build(*(Path(arg) for arg in sys.argv[1:])):
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
