from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from connectors.sig.addressindex.sources import AddressRecord, SourceError, count_rows, read_records

from .conftest import SAMPLE

BAN_HEADER = (
    "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;code_insee_ancienne_commune;"
    "nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;libelle_acheminement;nom_afnor;source_position;"
    "source_nom_voie;certification_commune;cad_parcelles"
)
BAN_ROW = (
    "75118_2974_00018;75118_2974;18;bis;Rue Duhesme;75018;75118;Paris 18e Arrondissement;;;651500.23;6865844.9;"
    "2.338562;48.890787;entrée;;;PARIS;RUE DUHESME;commune;commune;1;"
)
BAL13_HEADER = (
    "uid_adresse;cle_interop;commune_insee;commune_nom;commune_deleguee_insee;commune_deleguee_nom;voie_nom;"
    "lieudit_complement_nom;numero;suffixe;position;x;y;long;lat;cad_parcelles;source;date_der_maj;certification_commune"
)
BAL13_ROW = (
    ";71346_0010_00001;71346;Perrecy-les-Forges;;;Rue des Écoles;;1;;entrée;791000.1;6620000.2;4,21;46,61;;"
    "Commune;2023-01-05;1"
)


def _write(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_normalised_sample_yields_one_record_per_row() -> None:
    records = list(read_records(SAMPLE))
    assert len(records) == count_rows(SAMPLE) == 347
    assert records[0] == AddressRecord(
        "75101_8249_00041", "Rue de Rivoli", 41, "", "75001", "75101", "Paris 1er Arrondissement", 2.347911, 48.858495
    )


def test_ban_csv_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "adresses-75.csv.gz"
    path.write_bytes(gzip.compress(f"{BAN_HEADER}\n{BAN_ROW}\n".encode()))
    (record,) = read_records(path)
    assert (record.id, record.street, record.number, record.suffix) == ("75118_2974_00018", "Rue Duhesme", 18, "bis")
    assert (record.postcode, record.citycode, record.lon, record.lat) == ("75018", "75118", 2.338562, 48.890787)


def test_ban_lieu_dit_without_number(tmp_path: Path) -> None:
    row = BAN_ROW.replace(";18;bis;", ";99999;;")
    (record,) = read_records(_write(tmp_path / "b.csv", f"{BAN_HEADER}\n{row}\n"))
    assert record.number is None


def test_bal_13_with_bom_crlf_and_decimal_comma(tmp_path: Path) -> None:
    path = _write(tmp_path / "bal.csv", f"{BAL13_HEADER}\n{BAL13_ROW}\n", bom=True, crlf=True)
    (record,) = read_records(path)
    assert record == AddressRecord(
        "71346_0010_00001", "Rue des Écoles", 1, "", "", "71346", "Perrecy-les-Forges", 4.21, 46.61
    )


def test_bal_14_columns(tmp_path: Path) -> None:
    header = "id_ban_commune;id_ban_toponyme;id_ban_adresse;" + BAL13_HEADER.removeprefix("uid_adresse;")
    row = "a;b;c;" + BAL13_ROW.removeprefix(";").replace(";1;;entrée", ";3;ter;entrée")
    (record,) = read_records(_write(tmp_path / "bal14.csv", f"{header}\n{row}\n"))
    assert (record.number, record.suffix, record.street) == (3, "ter", "Rue des Écoles")


def test_addok_ndjson(tmp_path: Path) -> None:
    docs = [
        {"id": "05068", "type": "municipality", "name": "Jarjayes", "citycode": "05068", "city": "Jarjayes"},
        {
            "id": "05068_0010", "type": "street", "name": "Route du Col", "postcode": "05130", "citycode": "05068",
            "city": "Jarjayes", "lon": 6.1, "lat": 44.5,
            "housenumbers": {"11": {"lon": 6.11, "lat": 44.51}, "2 bis": {"lon": 6.12, "lat": 44.52, "id": "X"}},
        },
        {"id": "05068_ld", "type": "locality", "name": "Les Pins", "postcode": "05130", "citycode": "05068",
         "city": "Jarjayes", "lon": 6.2, "lat": 44.6},
    ]  # fmt: skip
    path = _write(tmp_path / "data.ndjson", "\n".join(json.dumps(doc) for doc in docs) + "\n")
    records = list(read_records(path))
    assert count_rows(path) == len(records) == 3
    assert [(r.id, r.number, r.suffix, r.lon) for r in records] == [
        ("05068_0010_00011", 11, "", 6.11),
        ("X", 2, "bis", 6.12),
        ("05068_ld", None, "", 6.2),
    ]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "short.csv",
            "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n1;2;;R;1;2;C;1;2\n1;2\n",
            3,
        ),
        ("nan.csv", "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n1;x;;R;1;2;C;1;2\n", 2),
        ("header.csv", "a;b;c\n1;2;3\n", 1),
        ("bad.ndjson", '{"id": "a", "name": "R", "citycode": "1", "city": "C", "lon": 1, "lat": 2}\n{"id": \n', 2),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(SourceError) as raised:
        list(read_records(path))
    assert raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: ")
