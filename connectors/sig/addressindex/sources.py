"""Readers of address files, each yielding one plain record per house number.

Formats: the normalised CSV of shared/data/addresses, the BAN bulk CSV (protocols.md §1.7), BAL 1.3/1.4 CSV
(§1.8) and addok NDJSON exports (peers.md §2). The format is recognised from the header, so a caller only
lists paths; ``.gz`` files are decompressed on the fly.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The BAN writes lieux-dits without a house number with these sentinel numbers.
NO_NUMBER = frozenset({0, 99999})


class SourceError(ValueError):
    """Malformed input, with the file and line it was found at."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = str(path)
        self.line = line


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """One house number (``number`` None for a street or lieu-dit without numbers)."""

    id: str
    street: str
    number: int | None
    suffix: str
    postcode: str
    citycode: str
    city: str
    lon: float
    lat: float


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115 - the wrapper closes it
    # utf-8-sig drops the BOM of BAL files; newline="" lets csv handle CRLF.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def count_rows(path: str | Path) -> int:
    """The records a file will yield (for progress reporting), without building them."""
    path = Path(path)
    with _open_text(path) as stream:
        first = stream.readline()
        if first.lstrip().startswith("{"):
            stream.seek(0)
            # A document holds many house numbers: counting them needs the JSON, still far cheaper than indexing.
            return sum(_ndjson_records(line) for line in stream if line.strip())
        return sum(1 for line in stream if line.strip())


def _ndjson_records(line: str) -> int:
    try:
        doc = json.loads(line)
        if doc.get("type") == "municipality":
            return 0
        return len(doc.get("housenumbers") or {}) or 1
    except (ValueError, AttributeError):
        # The reader reports the malformed line with its number; counting goes on.
        return 1


def _number(value: str) -> int | None:
    number = int(value)
    return None if number in NO_NUMBER else number


_CsvRow = dict[str, str]
_Mapper = Callable[[_CsvRow], AddressRecord]


def _normalised(row: _CsvRow) -> AddressRecord:
    return AddressRecord(
        id=row["id"],
        street=row["nom_voie"],
        number=_number(row["numero"]),
        suffix=row["suffixe"].strip().lower(),
        postcode=row["code_postal"],
        citycode=row["code_insee"],
        city=row["nom_commune"],
        lon=float(row["lon"]),
        lat=float(row["lat"]),
    )


def _ban(row: _CsvRow) -> AddressRecord:
    return AddressRecord(
        id=row["id"],
        street=row["nom_voie"] or row.get("nom_ld") or "",
        number=_number(row["numero"]),
        suffix=row["rep"].strip().lower(),
        postcode=row["code_postal"],
        citycode=row["code_insee"],
        city=row["nom_commune"],
        lon=float(row["lon"]),
        lat=float(row["lat"]),
    )


def _bal(row: _CsvRow) -> AddressRecord:
    # The validator accepts a decimal comma (with a warning), and a few aliases of the coordinate columns.
    lon = row.get("long") or row.get("lon") or ""
    return AddressRecord(
        id=row["cle_interop"],
        street=row["voie_nom"],
        number=_number(row["numero"]),
        suffix=row.get("suffixe", "").strip().lower(),
        postcode=row.get("code_postal", "") or "",
        citycode=row["commune_insee"],
        city=row["commune_nom"],
        lon=float(lon.replace(",", ".")),
        lat=float(row["lat"].replace(",", ".")),
    )


# Columns that identify each CSV format; the first whose columns are all present wins.
_CSV_FORMATS: list[tuple[str, frozenset[str], _Mapper]] = [
    ("BAN", frozenset({"id", "numero", "rep", "nom_voie", "code_insee", "lon", "lat"}), _ban),
    ("BAL", frozenset({"cle_interop", "commune_insee", "commune_nom", "voie_nom", "numero", "lat"}), _bal),
    ("normalised", frozenset({"id", "numero", "suffixe", "nom_voie", "code_insee", "lon", "lat"}), _normalised),
]


def _read_csv(path: Path, stream: io.TextIOBase) -> Iterator[AddressRecord]:
    reader = csv.DictReader(stream, delimiter=";")
    columns = set(reader.fieldnames or [])
    mapper = next((mapper for _name, required, mapper in _CSV_FORMATS if required <= columns), None)
    if mapper is None:
        raise SourceError(path, 1, f"unknown header {sorted(columns)}: expected a BAN, BAL or normalised CSV")
    for row in reader:
        if None in row or any(value is None for value in row.values()):
            raise SourceError(path, reader.line_num, "wrong number of columns")
        try:
            yield mapper(row)
        except (KeyError, ValueError) as error:
            raise SourceError(path, reader.line_num, f"bad value ({error})") from error


def _split_housenumber(key: str) -> tuple[int, str]:
    digits = key.strip().split(" ", 1)
    head = digits[0]
    end = len(head) - len(head.lstrip("0123456789"))
    number_part, suffix = head[:end], head[end:]
    if len(digits) > 1:
        suffix = (suffix + " " + digits[1]).strip()
    return int(number_part), suffix.lower()


def _read_ndjson(path: Path, stream: io.TextIOBase) -> Iterator[AddressRecord]:
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if doc.get("type") == "municipality":
                # Municipalities are derived from the streets; the NDJSON ones add nothing a record can hold.
                continue
            common = {
                "street": doc["name"],
                "postcode": str(doc.get("postcode", "")),
                "citycode": str(doc["citycode"]),
                "city": doc["city"],
            }
            housenumbers = doc.get("housenumbers") or {}
            if not housenumbers:
                yield AddressRecord(
                    doc["id"], number=None, suffix="", lon=float(doc["lon"]), lat=float(doc["lat"]), **common
                )
            for key, point in housenumbers.items():
                number, suffix = _split_housenumber(key)
                hn_id = point.get("id") or f"{doc['id']}_{number:05d}" + (f"_{suffix}" if suffix else "")
                yield AddressRecord(
                    hn_id, number=number, suffix=suffix, lon=float(point["lon"]), lat=float(point["lat"]), **common
                )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise SourceError(path, line_number, f"bad document ({error!r})") from error


def read_records(path: str | Path) -> Iterator[AddressRecord]:
    """Records of one file, whatever its format; raises SourceError naming the file and line."""
    path = Path(path)
    with _open_text(path) as stream:
        first = stream.read(1)
        stream.seek(0)
        if first == "{":
            yield from _read_ndjson(path, stream)
        else:
            yield from _read_csv(path, stream)
