"""Turning the bytes of a CSV, XLSX or ODS file into a header and rows of strings.

Everything here is synchronous and may take seconds on a large file: the
connector calls it through ``asyncio.to_thread``. The format is recognised from
the content, not from a file name, because URL sources often have none.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

__all__ = ["SourceError", "Table", "cell_text", "detect_format", "read_table"]

CSV_DELIMITERS = ",;\t|"
SNIFF_SIZE = 64 * 1024
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


class SourceError(Exception):
    """The file cannot be read, or does not fit the configuration. The message is
    meant for the administrator and says what to change."""


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[dict[str, str]]


def read_table(content: bytes, *, delimiter: str = "", encoding: str = "utf-8", sheet: str | None = None) -> Table:
    """Read any supported format; the first non-empty row is the header."""
    kind = detect_format(content)
    if kind == "xlsx":
        return make_table(xlsx_rows(content, sheet))
    if kind == "ods":
        return make_table(ods_rows(content, sheet))
    return make_table(csv_rows(content, delimiter=delimiter, encoding=encoding))


def detect_format(content: bytes) -> str:
    """``csv``, ``xlsx`` or ``ods``, from the bytes themselves."""
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise SourceError("this is an old Excel (.xls) file; save it as XLSX, ODS or CSV")
    if not content.startswith(b"PK\x03\x04"):
        return "csv"
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype").startswith(ODS_MIMETYPE):
                return "ods"
            if "xl/workbook.xml" in names:
                return "xlsx"
    except zipfile.BadZipFile:
        raise SourceError("the file looks like a ZIP archive (XLSX/ODS) but is damaged or truncated") from None
    raise SourceError("the file is a ZIP archive but neither an XLSX nor an ODS spreadsheet")


def make_table(rows: Iterable[list[str]]) -> Table:
    iterator = iter(rows)
    header: list[str] | None = None
    for row in iterator:
        if any(row):
            header = [name.strip() for name in row]
            break
    if header is None:
        raise SourceError("the file is empty (no header row)")
    # Spreadsheets often carry formatted but empty columns: a column needs a name to be kept.
    kept = [(index, name) for index, name in enumerate(header) if name]
    seen: set[str] = set()
    for _, name in kept:
        if name in seen:
            raise SourceError(f"the header has two columns named {name!r}; rename one of them")
        seen.add(name)
    records = []
    for row in iterator:
        if not any(row):
            continue
        records.append({name: (row[index].strip() if index < len(row) else "") for index, name in kept})
    return Table([name for _, name in kept], records)


# -- CSV ---------------------------------------------------------------------


def csv_rows(content: bytes, *, delimiter: str, encoding: str) -> list[list[str]]:
    text = decode(content, encoding)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or sniff_delimiter(text)))
    except csv.Error as exc:
        raise SourceError(f"the CSV file is malformed: {exc}") from None


def decode(content: bytes, encoding: str) -> str:
    # "utf-8-sig" also reads files without a byte-order mark, and drops it when
    # there is one (Excel writes it), so the first column name stays clean.
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return content.decode(codec)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the file is not valid {encoding} (byte 0x{content[exc.start]:02x} at position {exc.start}); "
            "set the encoding, e.g. latin-1"
        ) from None


def sniff_delimiter(text: str) -> str:
    sample = text[:SNIFF_SIZE]
    if len(text) > SNIFF_SIZE and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut line would mislead the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        # One-column files and very irregular ones: the header decides.
        header = sample.split("\n", 1)[0]
        counts = {candidate: header.count(candidate) for candidate in CSV_DELIMITERS}
        best = max(counts, key=lambda candidate: counts[candidate])
        return best if counts[best] else ","


# -- spreadsheets ------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A spreadsheet value as the text a person sees: 5000, not 5000.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(value, ".15g")  # drops binary noise such as 0.30000000000000004
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def xlsx_rows(content: bytes, sheet: str | None) -> Iterator[list[str]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types on a damaged file
        raise SourceError(f"cannot read the XLSX file: {exc}") from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise SourceError(f"no sheet named {sheet!r}; the sheets are: {', '.join(workbook.sheetnames)}")
        rows = [[cell_text(value) for value in row] for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()  # read-only workbooks keep the archive open until closed
    return iter(rows)


def ods_rows(content: bytes, sheet: str | None) -> Iterator[list[str]]:
    from odf.namespaces import TABLENS
    from odf.opendocument import load
    from odf.table import Table as OdfTable
    from odf.table import TableRow

    try:
        document = load(io.BytesIO(content))
    except Exception as exc:  # odfpy raises XML and zip errors of many kinds
        raise SourceError(f"cannot read the ODS file: {exc}") from None
    tables = document.spreadsheet.getElementsByType(OdfTable)
    names = [table.getAttribute("name") for table in tables]
    if not tables:
        raise SourceError("the ODS file has no sheet")
    if sheet is None:
        table = tables[0]
    elif sheet in names:
        table = tables[names.index(sheet)]
    else:
        raise SourceError(f"no sheet named {sheet!r}; the sheets are: {', '.join(names)}")
    for row in table.getElementsByType(TableRow):
        cells = ods_cells(row)
        if not any(cells):
            continue  # also avoids expanding the million repeated blank rows LibreOffice writes
        repeat = int(row.getAttrNS(TABLENS, "number-rows-repeated") or 1)
        for _ in range(repeat):
            yield cells


def ods_cells(row: Any) -> list[str]:
    from odf.namespaces import TABLENS

    cells: list[str] = []
    pending_blanks = 0  # blank cells are only written out if a value follows them
    for cell in row.childNodes:
        if cell.qname not in ((TABLENS, "table-cell"), (TABLENS, "covered-table-cell")):
            continue
        repeat = int(cell.getAttrNS(TABLENS, "number-columns-repeated") or 1)
        value = ods_value(cell)
        if not value:
            pending_blanks += repeat
            continue
        cells.extend([""] * pending_blanks)
        pending_blanks = 0
        cells.extend([value] * repeat)
    return cells


def ods_value(cell: Any) -> str:
    from odf import teletype
    from odf.namespaces import OFFICENS
    from odf.text import P

    kind = cell.getAttrNS(OFFICENS, "value-type")
    if kind in ("float", "percentage", "currency"):
        raw = cell.getAttrNS(OFFICENS, "value")
        try:
            return cell_text(float(raw))
        except (TypeError, ValueError):
            pass  # fall back on the displayed text
    elif kind == "date":
        raw = cell.getAttrNS(OFFICENS, "date-value") or ""
        return raw.removesuffix("T00:00:00")
    elif kind == "boolean":
        return cell.getAttrNS(OFFICENS, "boolean-value") or ""
    return "\n".join(teletype.extractText(paragraph) for paragraph in cell.getElementsByType(P)).strip()
