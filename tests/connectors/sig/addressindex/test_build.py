from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sig.addressindex import SourceError, build_index
from connectors.sig.addressindex.build import commune_info

from .conftest import SAMPLE


def test_progress_reports_rows_done_out_of_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    index = build_index([SAMPLE, SAMPLE], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (694, 694)
    assert all(total == 694 for _, total in calls)
    # The same rows twice make the same streets: one document per (commune, street name).
    assert [f["properties"]["label"] for f in index.search("place vendome", limit=5)] == ["Place Vendôme 75001 Paris"]


def test_streets_and_municipalities_are_documents() -> None:
    data = build_index([SAMPLE]).data
    assert sorted(data.doc_id[:3]) == ["05068", "05115", "75101"]
    # 26 distinct (commune, street) pairs in the sample, plus 3 municipalities.
    assert len(data.doc_id) == 29
    assert len(data.hn_number) == 347


def test_street_without_house_numbers_is_a_locality(tmp_path: Path) -> None:
    path = tmp_path / "ld.csv"
    path.write_text(
        "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n"
        "05115_ld01_99999;99999;;Les Granges;05190;05115;Remollon;6.17;44.46\n",
        encoding="utf-8",
    )
    index = build_index([path])
    props = index.search("granges")[0]["properties"]
    assert (props["type"], props["label"], props["id"]) == (
        "locality",
        "Les Granges 05190 Remollon",
        "05115_ld01_99999",
    )
    assert index.get("05115_ld01_99999")["properties"]["locality"] == "Les Granges"
    assert index.search("granges", type="locality")[0]["properties"]["id"] == "05115_ld01_99999"
    assert index.search("granges", type="street") == []
    assert index.reverse(6.17, 44.4601)[0]["properties"]["type"] == "locality"


def test_ids_need_not_be_ascii(tmp_path: Path) -> None:
    path = tmp_path / "accents.csv"
    path.write_text(
        "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n"
        "05061_chemin-des-prés_00007;7;;Chemin des Prés;05000;05061;Gap;6.08;44.56\n",
        encoding="utf-8",
    )
    index = build_index([path])
    assert index.get("05061_chemin-des-prés_00007")["properties"]["label"] == "7 Chemin des Prés 05000 Gap"


def test_malformed_source_reported_with_progress_too(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"id": "a", "name": "R", "citycode": "1", "city": "C", "lon": 1, "lat": 2}\n{"id": \n')
    with pytest.raises(SourceError, match=r"bad.ndjson:2: "):
        build_index([path], progress=lambda done, total: None)


def test_populations_are_those_of_the_referentials() -> None:
    # The build reads populations from the bundled file itself, to keep the referentials out of its memory.
    data = build_index([SAMPLE]).data
    for m, citycode in enumerate(data.doc_id[:3]):
        info = commune_info(citycode)
        assert info is not None and data.doc_population[m] == info["population"] > 0
