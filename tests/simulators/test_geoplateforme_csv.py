"""The Géoplateforme simulator's batch CSV endpoints (protocols.md §1.6, §1.4 and fidelity note 1)."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulators.geoplateforme import Address, load_csv, make_app
from simulators.geoplateforme.batch import REVERSE_COLUMNS, SEARCH_COLUMNS

DATA = Path(__file__).parent / "data" / "addresses-sample.csv"
QUERY_COLUMNS = ("numero", "suffixe", "nom_voie", "code_postal", "nom_commune")


@pytest.fixture(scope="module")
def addresses() -> list[Address]:
    return load_csv(DATA)


@pytest.fixture(scope="module")
def sample_lines() -> list[str]:
    """The header and real rows of the sample: three in Paris, three in Jarjayes."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    paris = [line for line in lines if line.startswith("75101_")][:3]
    jarjayes = [line for line in lines if line.startswith("05068_")][:3]
    return [lines[0], *paris, *jarjayes]


@pytest.fixture
async def client(addresses: list[Address]) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(make_app(addresses), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def post(
    client: TestClient, path: str, data: bytes | None, filename: str = "addresses.csv", **fields: Any
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    if data is not None:
        form.add_field("data", data, filename=filename, content_type="text/csv")
    for name, values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            form.add_field(name, value)
    return await client.post(path, data=form)


def rows(body: bytes, delimiter: str, encoding: str = "utf-8") -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(body.decode(encoding)), delimiter=delimiter)
    found = list(reader)
    return list(reader.fieldnames or []), found


async def test_semicolon_file_keeps_its_columns_delimiter_and_bom(client: TestClient, sample_lines: list[str]) -> None:
    raw = codecs.BOM_UTF8 + ("\n".join(sample_lines) + "\n").encode("utf-8")
    response = await post(client, "/search/csv/", raw, columns=list(QUERY_COLUMNS))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="addresses.geocoded.csv"'
    body = await response.read()
    assert body.startswith(codecs.BOM_UTF8) and not body.startswith(codecs.BOM_UTF8 * 2)
    header, found = rows(body[len(codecs.BOM_UTF8) :], ";")
    input_header = sample_lines[0].split(";")
    assert header == [*input_header, *SEARCH_COLUMNS]
    assert len(found) == len(sample_lines) - 1
    for line, row in zip(sample_lines[1:], found, strict=True):
        assert [row[name] for name in input_header] == line.split(";")
        # Each real row geocodes back to itself, at its own coordinates.
        assert row["result_id"] == row["id"]
        assert (row["longitude"], row["latitude"]) == (row["lon"], row["lat"])
        assert row["result_postcode"] == row["code_postal"] and row["result_citycode"] == row["code_insee"]
        assert row["result_type"] == "housenumber" and row["result_status"] == "ok"
        assert 0.5 < float(row["result_score"]) <= 1
        assert float(row["result_score_next"]) <= float(row["result_score"])


async def test_comma_file_without_bom_gets_none_and_quotes_commas(client: TestClient) -> None:
    raw = b"ref,adresse,ville\nA1,140 rue de rivoli,75001 paris\nA2,route du col,jarjayes\n"
    response = await post(client, "/search/csv", raw, filename="batch.txt", columns=["adresse", "ville"])
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="batch.geocoded.csv"'
    body = await response.read()
    assert not body.startswith(codecs.BOM_UTF8)
    assert body.splitlines()[0].startswith(b"ref,adresse,ville,latitude,longitude,result_label,")
    # The context holds commas: csv quoting keeps it one cell.
    assert b'"75, Paris, \xc3\x8ele-de-France"' in body
    header, found = rows(body, ",")
    assert header[:3] == ["ref", "adresse", "ville"]
    assert [row["ref"] for row in found] == ["A1", "A2"]
    assert found[0]["result_label"] == "140 Rue de Rivoli 75001 Paris"
    assert found[0]["result_district"] == "Paris 1er Arrondissement"
    assert (found[1]["result_type"], found[1]["result_city"]) == ("street", "Jarjayes")


@pytest.mark.parametrize("delimiter", ["\t", "|"])
async def test_tab_and_pipe_are_detected_and_kept(client: TestClient, delimiter: str) -> None:
    raw = delimiter.join(["adresse", "cp"]).encode() + b"\n" + delimiter.join(["12 rue cambon", "75001"]).encode()
    response = await post(client, "/search/csv", raw, columns="adresse", postcode="cp")
    header, found = rows(await response.read(), delimiter)
    assert header[:3] == ["adresse", "cp", "latitude"]
    assert found[0]["result_label"] == "12 Rue Cambon 75001 Paris"


async def test_latin_1_file_is_answered_in_latin_1(client: TestClient) -> None:
    raw = "adresse;commune\n1 place vendôme;paris\n".encode("latin-1")
    response = await post(client, "/search/csv", raw)
    assert response.headers["Content-Type"] == "text/csv; charset=iso-8859-1"
    body = await response.read()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    _, found = rows(body, ";", "latin-1")
    assert found[0]["adresse"] == "1 place vendôme"
    assert found[0]["result_street"] == "Place Vendôme"


async def test_no_columns_means_every_column(client: TestClient) -> None:
    response = await post(client, "/search/csv", b"numero;voie\n140;rue de rivoli\n")
    _, found = rows(await response.read(), ";")
    assert found[0]["result_id"] == "75101_8249_00140"


async def test_citycode_column_filters_each_row(client: TestClient) -> None:
    # The same street asked in two communes: only the one that has it answers.
    raw = b"voie;insee\nroute du col;05068\nroute du col;75101\n"
    response = await post(client, "/search/csv", raw, columns="voie", citycode="insee")
    _, found = rows(await response.read(), ";")
    assert (found[0]["result_citycode"], found[0]["result_status"]) == ("05068", "ok")
    assert (found[1]["result_label"], found[1]["result_status"]) == ("", "not-found")


async def test_result_columns_selects_the_output(client: TestClient) -> None:
    raw = b"adresse\n140 rue de rivoli paris\n"
    response = await post(client, "/search/csv", raw, result_columns=["result_id", "latitude"])
    header, found = rows(await response.read(), ",")
    assert header == ["adresse", "result_id", "latitude"]
    assert found[0]["result_id"] == "75101_8249_00140"


async def test_scores_at_or_below_min_score_leave_the_cells_empty(client: TestClient) -> None:
    q = "rue rivoli qqq www"
    # The same query on /search does find something, with a score of at most 0.5: the CSV row must drop it.
    search = await (await client.get("/search", params={"q": q, "autocomplete": "0", "limit": "1"})).json()
    assert 0 < search["features"][0]["properties"]["score"] <= 0.5
    response = await post(client, "/search/csv", f"adresse\n{q}\n140 rue de rivoli\n\n".encode())
    _, found = rows(await response.read(), ",")
    assert [row["result_status"] for row in found] == ["not-found", "ok"]
    assert all(found[0][name] == "" for name in SEARCH_COLUMNS if name != "result_status")
    assert found[1]["result_label"] == "140 Rue de Rivoli 75001 Paris"


async def test_empty_query_is_skipped(client: TestClient) -> None:
    response = await post(client, "/search/csv", b"a;b\n;\n1;rue cambon\n", columns="b")
    _, found = rows(await response.read(), ";")
    assert [row["result_status"] for row in found] == ["skipped", "ok"]


@pytest.mark.parametrize(
    ("data", "fields", "message"),
    [
        (None, {"columns": "adresse"}, "A CSV file must be provided in data field"),
        (b"adresse\nrivoli\n", {"columns": "address"}, "At least one given column name is unknown"),
        (b"adresse\nrivoli\n", {"citycode": "insee"}, "At least one given column name is unknown"),
        (b"adresse\nrivoli\n", {"result_columns": "result_foo"}, "At least one given column name is unknown"),
    ],
)
async def test_request_errors(client: TestClient, data: bytes | None, fields: dict[str, str], message: str) -> None:
    response = await post(client, "/search/csv/", data, **fields)
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": message}


@pytest.mark.parametrize("data", [b"a;b\n1;2;3\n", b'a,b\n"unterminated,2\n', b'a,b\n"x"y,2\n', b"", b"\n\n"], ids=str)
async def test_malformed_csv_is_a_400(client: TestClient, data: bytes) -> None:
    response = await post(client, "/search/csv", data)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400 and body["message"].startswith("Errors in CSV file: ")


async def test_reverse_csv_finds_each_real_row(client: TestClient, sample_lines: list[str]) -> None:
    raw = ("\n".join(sample_lines) + "\n").encode("utf-8")
    for path in ("/reverse/csv", "/reverse/csv/"):
        response = await post(client, path, raw)
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        header, found = rows(await response.read(), ";")
        assert header == [*sample_lines[0].split(";"), *REVERSE_COLUMNS]
        for row in found:
            assert row["result_id"] == row["id"]
            assert (row["result_longitude"], row["result_latitude"]) == (row["lon"], row["lat"])
            assert (row["result_distance"], row["result_score"]) == ("0", "1.0")


async def test_reverse_csv_accepts_latitude_longitude_and_skips_bad_rows(client: TestClient) -> None:
    raw = b"name,Latitude,lng\nnear 146,48.8606,2.342\nbad,north,2.3\n"
    response = await post(client, "/reverse/csv", raw)
    _, found = rows(await response.read(), ",")
    assert found[0]["result_label"] == "146 Rue de Rivoli 75001 Paris"
    assert 0 < int(found[0]["result_distance"]) < 20
    assert all(found[1][name] == "" for name in REVERSE_COLUMNS)


async def test_reverse_csv_needs_coordinate_columns(client: TestClient) -> None:
    response = await post(client, "/reverse/csv", b"x,y\n2.3,48.8\n")
    assert response.status == 400
    assert (await response.json())["message"].startswith("Errors in CSV file: ")


async def test_forced_modes_and_rate_limit_apply_to_csv(client: TestClient, addresses: list[Address]) -> None:
    await client.post("/_simulator/mode", json={"mode": "429"})
    response = await post(client, "/search/csv", b"adresse\nrivoli\n")
    assert response.status == 429 and response.headers["Retry-After"] == "5"
    await client.post("/_simulator/mode", json={"mode": "500"})
    assert (await post(client, "/reverse/csv", b"lat,lon\n48.86,2.34\n")).status == 500
    stats = await (await client.get("/_simulator/stats")).json()
    assert stats["calls"] == {"search/csv": 1, "reverse/csv": 1}

    now = [0.0]
    limited = TestClient(TestServer(make_app(addresses, rate_limit=1, clock=lambda: now[0]), host="127.0.0.1"))
    await limited.start_server()
    try:
        assert (await post(limited, "/search/csv", b"adresse\nrivoli\n")).status == 200
        assert (await post(limited, "/search/csv", b"adresse\nrivoli\n")).status == 429
        now[0] += 1
        assert (await post(limited, "/search/csv", b"adresse\nrivoli\n")).status == 200
    finally:
        await limited.close()


async def test_rows_are_not_completed_as_typed(client: TestClient) -> None:
    # /search completes the last word by default; the CSV endpoint geocodes whole words, as addok-csv does.
    search = await (await client.get("/search", params={"q": "place vendo", "limit": "1"})).json()
    assert search["features"][0]["properties"]["street"] == "Place Vendôme"
    assert search["features"][0]["properties"]["score"] > 0.5
    response = await post(client, "/search/csv", b"adresse\nplace vendo\nplace vendome\n")
    _, found = rows(await response.read(), ",")
    assert [row["result_status"] for row in found] == ["not-found", "ok"]
