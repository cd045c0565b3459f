"""Batch CSV geocoding: `POST /search/csv` and `/reverse/csv` (protocols.md §1.6, §1.4).

Each row goes through the same matcher as /search (autocomplete off, best of 3, as addok-csv does) or /reverse.
The file comes back with its columns in their order, its delimiter, its encoding and its BOM, and the result columns
appended in addok-geocode-stream's order.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from aiohttp import web
from multidict import MultiDictProxy

from .data import Place
from .search import Filters, Index

SEARCH_COLUMNS = (
    "latitude",
    "longitude",
    "result_label",
    "result_score",
    "result_score_next",
    "result_type",
    "result_id",
    "result_housenumber",
    "result_name",
    "result_street",
    "result_postcode",
    "result_city",
    "result_context",
    "result_citycode",
    "result_oldcitycode",
    "result_oldcity",
    "result_district",
    "result_status",
)
REVERSE_COLUMNS = (
    "result_latitude",
    "result_longitude",
    "result_distance",
    "result_label",
    "result_score",
    "result_type",
    "result_id",
    "result_housenumber",
    "result_name",
    "result_street",
    "result_postcode",
    "result_city",
    "result_context",
    "result_citycode",
)
MIN_SCORE = 0.5
DELIMITERS = (",", ";", "\t", "|")
_LATITUDE = ("latitude", "lat")
_LONGITUDE = ("longitude", "lon", "lng", "long")
# GeoCodeJSON properties copied into result_<name> cells.
_PROPERTIES = (
    "label",
    "type",
    "id",
    "housenumber",
    "name",
    "street",
    "postcode",
    "city",
    "context",
    "citycode",
    "oldcitycode",
    "oldcity",
    "district",
)


class CsvError(Exception):
    """A 400 answer; the message is the body's `message`."""


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    delimiter: str
    encoding: str
    bom: bool
    newline: str
    filename: str


def _error(message: str) -> web.Response:
    return web.json_response({"code": 400, "message": message}, status=400)


def _decode(raw: bytes) -> tuple[str, str, bool]:
    """Text, encoding and whether a BOM was there: UTF-8 first, latin-1 when the bytes are not UTF-8."""
    bom = raw.startswith(codecs.BOM_UTF8)
    if bom:
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8"), "utf-8", bom
    except UnicodeDecodeError:
        # Every byte string is valid latin-1, so this is the fallback for the spreadsheets of Windows users.
        return raw.decode("latin-1"), "iso-8859-1", False


def _delimiter(header_line: str) -> str:
    # The header is the most regular line: the candidate it holds most often wins, "," when it holds none.
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read(raw: bytes, filename: str) -> Table:
    text, encoding, bom = _decode(raw)
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise CsvError("Errors in CSV file: the file is empty or its first line (the header) is blank")
    delimiter = _delimiter(first_line)
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise CsvError(f"Errors in CSV file: {exc}") from exc
    header, rows = lines[0], [row for row in lines[1:] if row]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise CsvError(f"Errors in CSV file: row {number} has {len(row)} fields, the header has {len(header)}")
    newline = "\r\n" if "\r\n" in text else "\n"
    return Table(header, rows, delimiter, encoding, bom, newline, filename)


async def _table(request: web.Request) -> tuple[Table, MultiDictProxy[str | bytes | web.FileField]]:
    form = await request.post()
    data = form.get("data")
    if isinstance(data, web.FileField):
        raw, filename = data.file.read(), data.filename or "data.csv"
    elif isinstance(data, str) and data:
        # curl -F data=@file always sends a file part; a plain text field is accepted too for hand-made requests.
        raw, filename = data.encode("utf-8"), "data.csv"
    else:
        raise CsvError("A CSV file must be provided in data field")
    return _read(raw, filename), form


def _names(form: MultiDictProxy[str | bytes | web.FileField], field: str) -> list[str]:
    return [value for value in form.getall(field, []) if isinstance(value, str) and value]


def _respond(table: Table, result_header: Sequence[str], results: list[dict[str, str]]) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator=table.newline)
    writer.writerow([*table.header, *result_header])
    for row, result in zip(table.rows, results, strict=True):
        writer.writerow([*row, *(result.get(name, "") for name in result_header)])
    body = out.getvalue().encode(table.encoding, errors="replace")
    if table.bom:
        body = codecs.BOM_UTF8 + body
    stem = PurePath(table.filename).stem or "data"
    return web.Response(
        body=body,
        headers={
            "Content-Type": f"text/csv; charset={table.encoding}",
            "Content-Disposition": f'attachment; filename="{stem}.geocoded.csv"',
        },
    )


def _result_header(
    form: MultiDictProxy[str | bytes | web.FileField], all_columns: Sequence[str]
) -> Sequence[str] | None:
    """The requested subset in the requested order, all result columns when none is asked, None if one is unknown."""
    wanted = _names(form, "result_columns")
    if any(name not in all_columns for name in wanted):
        return None
    return wanted or all_columns


def _properties(place: Place) -> dict[str, str]:
    return {f"result_{key}": str(place.properties[key]) for key in _PROPERTIES if key in place.properties}


def _filters(table: Table, form: MultiDictProxy[str | bytes | web.FileField]) -> Callable[[list[str]], Filters] | None:
    """Per-row filters from the columns named by `citycode`/`postcode`, or None if a name is not a column."""
    positions: dict[str, int] = {}
    for field in ("citycode", "postcode"):
        value = form.get(field)
        if isinstance(value, str) and value:
            if value not in table.header:
                return None
            positions[field] = table.header.index(value)

    def build(row: list[str]) -> Filters:
        values = {field: row[i].strip() or None for field, i in positions.items()}
        return Filters(None, values.get("postcode"), values.get("citycode"))

    return build


async def search_csv(index: Index, request: web.Request) -> web.Response:
    try:
        table, form = await _table(request)
    except CsvError as exc:
        return _error(str(exc))
    # Like addok-csv, no `columns` means every column makes up the query.
    columns = _names(form, "columns") or table.header
    filters = _filters(table, form)
    result_header = _result_header(form, SEARCH_COLUMNS)
    if any(name not in table.header for name in columns) or filters is None or result_header is None:
        return _error("At least one given column name is unknown")
    positions = [table.header.index(name) for name in columns]
    results = []
    for row in table.rows:
        q = " ".join(row[i].strip() for i in positions if row[i].strip())
        results.append(_geocode(index, q, filters(row)))
    return _respond(table, result_header, results)


def _geocode(index: Index, q: str, filters: Filters) -> dict[str, str]:
    # addok-geocode-stream: "skipped" when there is nothing to search, "not-found" when nothing beats min_score.
    if len(q) < 3 or not q[:1].isalnum():
        return {"result_status": "skipped"}
    found = index.search(q, limit=3, autocomplete=False, filters=filters)
    if not found or found[0][1] <= MIN_SCORE:
        return {"result_status": "not-found"}
    place, score = found[0]
    result = {
        "latitude": str(place.lat),
        "longitude": str(place.lon),
        **_properties(place),
        "result_score": str(score),
        "result_score_next": str(found[1][1]) if len(found) > 1 else "",
        "result_status": "ok",
    }
    return result


def _coordinate_column(header: list[str], names: Sequence[str]) -> int | None:
    lowered = [name.strip().lower() for name in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


async def reverse_csv(index: Index, request: web.Request) -> web.Response:
    try:
        table, form = await _table(request)
    except CsvError as exc:
        return _error(str(exc))
    lat_at, lon_at = _coordinate_column(table.header, _LATITUDE), _coordinate_column(table.header, _LONGITUDE)
    if lat_at is None or lon_at is None:
        return _error("Errors in CSV file: a latitude|lat and a longitude|lon|lng|long column are required")
    filters = _filters(table, form)
    result_header = _result_header(form, REVERSE_COLUMNS)
    if filters is None or result_header is None:
        return _error("At least one given column name is unknown")
    results = [_reverse(index, row[lat_at], row[lon_at], filters(row)) for row in table.rows]
    return _respond(table, result_header, results)


def _reverse(index: Index, lat_text: str, lon_text: str, filters: Filters) -> dict[str, str]:
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        return {}
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return {}
    # No min_score here: a reverse score only measures distance, and the nearest address is the answer asked for.
    found = index.reverse(lon, lat, limit=1, filters=filters)
    if not found:
        return {}
    place, score, distance = found[0]
    return {
        "result_latitude": str(place.lat),
        "result_longitude": str(place.lon),
        "result_distance": str(distance),
        "result_score": str(score),
        **_properties(place),
    }
