"""Reading CSV, XLSX and ODS files into header and rows, and the configuration checks."""

from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P
from pydantic import ValidationError

from connectors.csvdatasource.config import CsvDataSourceConfig
from connectors.csvdatasource.reading import SourceError, cell_text, detect_format, read_table
from tests.connectors.csvdatasource.conftest import get_json

# -- CSV ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "delimiter"),
    [
        (b"id;nom;ville\n1;Gap, centre;Gap\n2;Romette;Gap\n", ";"),
        (b"id\tnom\n1\tGap, centre\n2\tRomette\n", "\t"),
        (b'id,nom\n1,"Gap; centre"\n2,Romette\n', ","),
        (b"id|nom\n1|Gap\n", "|"),
    ],
)
def test_csv_delimiter_is_detected(content, delimiter):
    table = read_table(content)
    assert table.columns[:2] == ["id", "nom"]
    assert table.rows[0]["nom"] == {";": "Gap, centre", "\t": "Gap, centre", ",": "Gap; centre", "|": "Gap"}[delimiter]


def test_csv_single_column_and_explicit_delimiter():
    assert read_table(b"id\n1\n2\n").rows == [{"id": "1"}, {"id": "2"}]
    # Forced: the semicolon is then part of the values.
    assert read_table(b"id,nom\n1;x,Gap\n", delimiter=",").rows == [{"id": "1;x", "nom": "Gap"}]


def test_utf8_byte_order_mark_is_dropped():
    table = read_table("\ufeffid,nom\n1,Église\n".encode())
    assert table.columns == ["id", "nom"]
    assert table.rows == [{"id": "1", "nom": "Église"}]


def test_latin1():
    content = "id;nom\n1;Écoles de Gap\n".encode("latin-1")
    assert read_table(content, encoding="latin-1").rows == [{"id": "1", "nom": "Écoles de Gap"}]
    with pytest.raises(SourceError, match=r"not valid utf-8 \(byte 0xc9 at position 9\); set the encoding"):
        read_table(content)


def test_header_and_rows_are_cleaned():
    content = b"\n , id , nom ,\n\n1,2,Gap,\n,,,\n3,4\n5,6,Romette,x,y\n"
    table = read_table(content, delimiter=",")
    assert table.columns == ["id", "nom"]  # unnamed columns dropped, names stripped
    assert table.rows == [{"id": "2", "nom": "Gap"}, {"id": "4", "nom": ""}, {"id": "6", "nom": "Romette"}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"id,nom,id\n1,a,b\n", "two columns named 'id'"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", r"old Excel \(.xls\) file"),
        (b"PK\x03\x04garbage", "damaged or truncated"),
    ],
)
def test_unreadable_files(content, message):
    with pytest.raises(SourceError, match=message):
        read_table(content)


# -- spreadsheets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (5000, "5000"),
        (5000.0, "5000"),
        (12.5, "12.5"),
        (0.1 + 0.2, "0.3"),
        (True, "true"),
        (datetime(2026, 3, 1), "2026-03-01"),
        (datetime(2026, 3, 1, 8, 30), "2026-03-01T08:30:00"),
        (date(2026, 3, 1), "2026-03-01"),
        ("  Gap ", "Gap"),
    ],
)
def test_cell_text(value, text):
    assert cell_text(value) == text


def make_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Autre"
    first.append(["x"])
    sheet = workbook.create_sheet("Équipements")
    sheet.append([])  # a blank row before the header
    sheet.append(["id", "nom", "code_postal", "surface", "ouverture", None])
    sheet.append([1, "Médiathèque", "05000", 1250.0, datetime(2026, 3, 1), None])
    sheet.append([2.0, "Piscine", 5000, 312.75, None, None])
    sheet.append([None, None, None, None, None, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx():
    content = make_xlsx()
    assert detect_format(content) == "xlsx"
    table = read_table(content, sheet="Équipements")
    assert table.columns == ["id", "nom", "code_postal", "surface", "ouverture"]
    assert table.rows == [
        {"id": "1", "nom": "Médiathèque", "code_postal": "05000", "surface": "1250", "ouverture": "2026-03-01"},
        {"id": "2", "nom": "Piscine", "code_postal": "5000", "surface": "312.75", "ouverture": ""},
    ]
    assert read_table(content).columns == ["x"]  # the first sheet by default
    with pytest.raises(SourceError, match="no sheet named 'Nope'; the sheets are: Autre, Équipements"):
        read_table(content, sheet="Nope")


def ods_cell(value: object = None, *, repeat: int = 1) -> TableCell:
    attributes: dict[str, object] = {}
    if repeat > 1:
        attributes["numbercolumnsrepeated"] = repeat
    if isinstance(value, (int, float)):
        cell = TableCell(valuetype="float", value=str(value), **attributes)
        cell.addElement(P(text=f"{value} (displayed)"))
    elif isinstance(value, date):
        cell = TableCell(valuetype="date", datevalue=value.isoformat(), **attributes)
        cell.addElement(P(text="01/03/2026"))
    elif value is None:
        cell = TableCell(**attributes)
    else:
        cell = TableCell(valuetype="string", **attributes)
        for line in str(value).split("\n"):
            cell.addElement(P(text=line))
    return cell


def make_ods() -> bytes:
    document = OpenDocumentSpreadsheet()
    for name, rows in (
        ("Accueil", [["x"]]),
        (
            "Équipements",
            [
                [None],
                ["id", "nom", None, "code_postal", "surface", "ouverture"],
                [1, "Médiathèque\nde Gap", None, "05000", 1250.0, date(2026, 3, 1)],
                [2, "Piscine", None, 5000, 312.75, None],
            ],
        ),
    ):
        table = Table(name=name)
        for values in rows:
            row = TableRow()
            for value in values:
                row.addElement(ods_cell(value))
            row.addElement(ods_cell(None, repeat=16000))  # what LibreOffice writes after the data
            table.addElement(row)
        blank = TableRow(numberrowsrepeated=1000000)
        blank.addElement(ods_cell(None, repeat=16384))
        table.addElement(blank)
        document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def test_ods():
    content = make_ods()
    assert detect_format(content) == "ods"
    table = read_table(content, sheet="Équipements")
    assert table.columns == ["id", "nom", "code_postal", "surface", "ouverture"]
    assert table.rows == [
        {"id": "1", "nom": "Médiathèque\nde Gap", "code_postal": "05000", "surface": "1250", "ouverture": "2026-03-01"},
        {"id": "2", "nom": "Piscine", "code_postal": "5000", "surface": "312.75", "ouverture": ""},
    ]
    assert read_table(content).columns == ["x"]
    with pytest.raises(SourceError, match="no sheet named 'Nope'; the sheets are: Accueil, Équipements"):
        read_table(content, sheet="Nope")


@pytest.mark.parametrize(("maker", "suffix"), [(make_xlsx, "xlsx"), (make_ods, "ods")])
async def test_spreadsheet_instances(hub_client, make_instance, tmp_path, maker, suffix):
    path = tmp_path / f"equipements.{suffix}"
    path.write_bytes(maker())
    config = {"source": str(path), "id_column": "id", "text_column": "nom", "sheet": "Équipements"}
    await make_instance("csvdatasource", "sheet", config=config)
    payload = await get_json(hub_client, "/csvdatasource/sheet/data?q=piscine")
    assert payload["data"] == [
        {"id": "2", "text": "Piscine", "nom": "Piscine", "code_postal": "5000", "surface": "312.75", "ouverture": ""}
    ]


# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"source": "ftp://example.org/x.csv"}, "not a ftp:// URL"),
        ({"source": "x.csv", "encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"source": "x.csv", "text_column": "{nom"}, "text template '{nom' is malformed"),
        ({"source": "x.csv", "text_column": "{nom!r}"}, "without ':' or '!'"),
        ({"source": "x.csv", "delimiter": ";;"}, "at most 1 character"),
        ({"source": "x.csv", "queries": {"a/b": {}}}, "query name 'a/b' may only hold"),
        ({"source": "x.csv", "colour": "red"}, "Extra inputs are not permitted"),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "value": "1", "parameter": "a"}]}}},
            "give exactly one of 'value' and 'parameter'",
        ),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "parameter": "limit"}]}}},
            "parameter name 'limit' is reserved",
        ),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "parameter": "NameID"}]}}},
            "parameter name 'NameID' is reserved",
        ),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "op": "gt", "value": "ten"}]}}},
            "op 'gt' needs a number, not 'ten'",
        ),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "op": "in", "value": "x"}]}}},
            "op 'in' takes a list as value",
        ),
        (
            {"source": "x.csv", "queries": {"q": {"filters": [{"column": "a", "op": "like", "value": "x"}]}}},
            "Input should be 'eq', 'ne'",
        ),
        ({"source": "x.csv", "queries": {"q": {"structure": "keyed-distinct"}}}, "needs exactly one 'distinct' key"),
    ],
)
def test_configuration_errors(config, message):
    with pytest.raises(ValidationError, match=message):
        CsvDataSourceConfig.model_validate(config)


def test_configuration_defaults():
    config = CsvDataSourceConfig.model_validate({"source": "https://opendata.example.org/equipements.csv"})
    assert config.is_url
    assert (config.id_column, config.text_column, config.encoding, config.refresh_interval) == (
        "id",
        "text",
        "utf-8",
        3600,
    )
    assert not CsvDataSourceConfig.model_validate({"source": "equipements.csv"}).is_url
