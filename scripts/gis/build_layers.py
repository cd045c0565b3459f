"""Build the GIS demo and test layers of demo/data/gis/ from the bundled open data.

    .venv/bin/python scripts/gis/build_layers.py [OUTPUT_DIR]

There is no official boundary file in the repository, so the polygons are derived
from the Base Adresse Nationale addresses of the Hautes-Alpes
(demo/data/ban-05-hautes-alpes.csv.gz): every address gets its Voronoi cell
(computed in Lambert-93, so that distances are metres), the cells are dissolved by
commune, cut to a buffered concave hull of all the addresses and simplified as one
coverage, so that neighbouring communes still share their edges exactly. Names,
postcodes and populations come from the INSEE list of connectors/sig/data/.

Outputs (WGS84, coordinates rounded to 6 decimals, one feature per line):

- ``communes-05.geojson``: one (Multi)Polygon per commune with an address;
- ``secteurs-collecte-gap.geojson``: Gap split into illustrative waste-collection
  sectors (whole streets grouped by distance and direction from the town centre);
- ``communes-05-points.geojson``: one point per commune, the mean of its addresses.

The output is the same bytes on every run with the same shapely/GEOS and pyproj;
demo/data/gis/README.md says what the layers are and are not.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

ROOT = Path(__file__).resolve().parents[2]
BAN = ROOT / "demo" / "data" / "ban-05-hautes-alpes.csv.gz"
COMMUNES = ROOT / "connectors" / "sig" / "data" / "communes.json.gz"
OUTPUT = ROOT / "demo" / "data" / "gis"

GAP = "05061"
# A ratio of 0.1 follows the inhabited valleys; the 3 km buffer gives back the
# mountains around them: 5,601 km² against the official 5,549 km² of the département.
HULL_RATIO = 0.1
HULL_BUFFER_M = 3000.0
# Metres, in Lambert-93: small enough to keep villages apart, large enough that the
# staircase of Voronoi edges does not make the files big.
SIMPLIFY_M = 30.0
DECIMALS = 6

# Illustrative sectors: streets whose centre is within CENTRE_M of the town centre,
# streets beyond HAMLETS_M, and four quadrants in between. Days are made up.
CENTRE_M = 1200.0
HAMLETS_M = 4500.0
# A long street drags slivers of its sector into the next one: pieces smaller than this
# go to the neighbour they share the longest border with, as a town hall would draw it.
FRAGMENT_M2 = 250_000.0
SECTORS = [
    ("GAP-1", "Centre-ville", "lundi et jeudi"),
    ("GAP-2", "Nord", "mardi"),
    ("GAP-3", "Est", "mercredi"),
    ("GAP-4", "Sud", "jeudi"),
    ("GAP-5", "Ouest", "vendredi"),
    ("GAP-6", "Hameaux", "mercredi"),
]

TO_L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
TO_WGS84 = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)


@dataclass
class Addresses:
    insee: list[str]
    street: list[str]
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray


def read_addresses(path: Path) -> Addresses:
    insee: list[str] = []
    street: list[str] = []
    lon: list[float] = []
    lat: list[float] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            insee.append(row["code_insee"])
            street.append(row["nom_voie"])
            lon.append(float(row["lon"]))
            lat.append(float(row["lat"]))
    lons, lats = np.array(lon), np.array(lat)
    x, y = TO_L93.transform(lons, lats)
    return Addresses(insee, street, lons, lats, np.asarray(x), np.asarray(y))


def read_communes(path: Path) -> dict[str, dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {row["code"]: row for row in json.load(f) if row["departement"] == "05"}


def gap_sector_of_streets(addresses: Addresses) -> dict[str, int]:
    """The index in SECTORS of each street of Gap, by where its addresses are on average."""
    rows = [i for i, code in enumerate(addresses.insee) if code == GAP]
    # The median rather than the mean: the hamlets would pull the mean off the centre.
    cx, cy = float(np.median(addresses.x[rows])), float(np.median(addresses.y[rows]))
    by_street: dict[str, list[int]] = defaultdict(list)
    for i in rows:
        by_street[addresses.street[i]].append(i)
    sectors = {}
    for street, members in sorted(by_street.items()):
        dx = float(addresses.x[members].mean()) - cx
        dy = float(addresses.y[members].mean()) - cy
        distance = math.hypot(dx, dy)
        if distance < CENTRE_M:
            sectors[street] = 0
        elif distance >= HAMLETS_M:
            sectors[street] = 5
        else:
            bearing = math.degrees(math.atan2(dx, dy)) % 360  # 0 = north, clockwise
            sectors[street] = 1 + int(((bearing + 45) % 360) // 90)
    return sectors


def voronoi_groups(addresses: Addresses, group_of: list[str]) -> dict[str, BaseGeometry]:
    """The union of the Voronoi cells of the addresses of each group, cut to the hull."""
    # Addresses on the same metre share a cell; the first one in file order names it.
    first: dict[tuple[int, int], int] = {}
    for i, key in enumerate(
        zip(np.rint(addresses.x).astype(int).tolist(), np.rint(addresses.y).astype(int).tolist(), strict=True)
    ):
        first.setdefault(key, i)
    kept = np.array(sorted(first.values()))
    points = shapely.multipoints(np.column_stack([addresses.x[kept], addresses.y[kept]]))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, ordered=True))
    hull = shapely.concave_hull(points, ratio=HULL_RATIO).buffer(HULL_BUFFER_M)
    members: dict[str, list[int]] = defaultdict(list)
    for cell, i in enumerate(kept.tolist()):
        members[group_of[i]].append(cell)
    return {
        group: shapely.intersection(shapely.coverage_union_all(cells[indexes]), hull)
        for group, indexes in sorted(members.items())
    }


def absorb_fragments(groups: dict[str, BaseGeometry], codes: list[str]) -> None:
    """Give every small piece of a sector to the neighbouring sector it borders most."""
    for code in codes:
        parts = sorted(shapely.get_parts(groups[code]), key=lambda part: -part.area)
        kept = [parts[0]]
        for part in parts[1:]:
            if part.area >= FRAGMENT_M2:
                kept.append(part)
                continue
            borders = {
                other: part.boundary.intersection(groups[other].boundary).length for other in codes if other != code
            }
            best = max(sorted(borders), key=lambda other: borders[other])
            if borders[best] == 0:
                kept.append(part)
                continue
            groups[best] = shapely.union(groups[best], part)
        groups[code] = shapely.union_all(kept)


def to_wgs84(geometry: BaseGeometry) -> BaseGeometry:
    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = TO_WGS84.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    projected = shapely.transform(geometry, project)
    # Snapping to the output grid can pinch a thin ring: set_precision keeps it valid.
    snapped = shapely.set_precision(projected, 10**-DECIMALS)
    return shapely.orient_polygons(snapped)  # RFC 7946: exterior rings counterclockwise


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def feature(geometry: BaseGeometry, properties: dict[str, Any]) -> dict[str, Any]:
    # No top-level "id": OGR would read it as a second "id" property, and both servers
    # take the identifier from a property (gml_featureid, id_field).
    geojson = shapely.geometry.mapping(geometry)
    return {
        "type": "Feature",
        "geometry": {"type": geojson["type"], "coordinates": rounded(geojson["coordinates"])},
        "properties": properties,
    }


def write_collection(path: Path, name: str, features: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write('{"type":"FeatureCollection","name":' + json.dumps(name) + ',"features":[\n')
        out.write(",\n".join(lines))
        out.write("\n]}\n")
    return len(lines)


def check(name: str, geometry: BaseGeometry) -> None:
    if not geometry.is_valid or geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise SystemExit(f"build_layers: {name} is {shapely.is_valid_reason(geometry)} ({geometry.geom_type})")


def build(output: Path) -> None:
    addresses = read_addresses(BAN)
    communes = read_communes(COMMUNES)
    sector_of = gap_sector_of_streets(addresses)
    # One coverage for everything: Gap enters it as its sectors, so that the simplified
    # sectors and the simplified commune of Gap have the same outline.
    group_of = [
        SECTORS[sector_of[street]][0] if insee == GAP else insee
        for insee, street in zip(addresses.insee, addresses.street, strict=True)
    ]
    groups = voronoi_groups(addresses, group_of)
    sector_codes = [code for code, _, _ in SECTORS]
    absorb_fragments(groups, sector_codes)
    names = list(groups)
    simplified = shapely.coverage_simplify(np.array([groups[n] for n in names]), SIMPLIFY_M)
    shapes = dict(zip(names, simplified, strict=True))
    shapes[GAP] = shapely.coverage_union_all(np.array([shapes[code] for code in sector_codes]))

    output.mkdir(parents=True, exist_ok=True)
    polygons = []
    for insee in sorted(set(addresses.insee)):
        geometry = to_wgs84(shapes[insee])
        check(insee, geometry)
        commune = communes[insee]
        properties = {
            "insee": insee,
            "nom": commune["nom"],
            "code_postal": sorted(commune["codesPostaux"])[0],
            "population": commune["population"],
        }
        polygons.append(feature(geometry, properties))
    count = write_collection(output / "communes-05.geojson", "communes-05", polygons)

    sectors = []
    for code, name, days in SECTORS:
        geometry = to_wgs84(shapes[code])
        check(code, geometry)
        properties = {"secteur": code, "nom": name, "jour_collecte": days, "insee": GAP}
        sectors.append(feature(geometry, properties))
    write_collection(output / "secteurs-collecte-gap.geojson", "secteurs-collecte-gap", sectors)

    rows_of: dict[str, list[int]] = defaultdict(list)
    for i, insee in enumerate(addresses.insee):
        rows_of[insee].append(i)
    points = []
    for insee, rows in sorted(rows_of.items()):
        point = shapely.Point(float(addresses.lon[rows].mean()), float(addresses.lat[rows].mean()))
        commune = communes[insee]
        properties = {"insee": insee, "nom": commune["nom"], "population": commune["population"]}
        points.append(feature(point, properties))
    write_collection(output / "communes-05-points.geojson", "communes-05-points", points)

    missing = sorted(set(communes) - set(rows_of))
    print(f"build_layers: {count} communes, {len(sectors)} sectors, {len(points)} points in {output}")
    if missing:
        print(f"build_layers: no address, so no shape, for {', '.join(missing)}")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
