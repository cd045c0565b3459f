"""Referentials as values: the bundle, geo.api.gouv.fr's payloads (through its simulator) and persisted JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.sig import referentials
from connectors.sig.geoapi import COMMUNES_PARAMS, DEPARTEMENTS_PARAMS, REGIONS_PARAMS
from connectors.sig.referentials import Referentials, bundled, cities, departments, regions
from simulators.geoapi import make_app

ALL = 100_000
# No minimum sizes: small hand-written payloads.
SMALL = {"min_communes": 0, "min_departements": 0, "min_regions": 0}


def _small_payloads() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    communes = [
        {
            "nom": "Gap",
            "code": "05061",
            "codesPostaux": ["05000", "05010"],
            "codeDepartement": "05",
            "codeRegion": "93",
            "population": 41000,
            "type": "commune-actuelle",
        },
        {
            "nom": "Saint-Pierre",
            "code": "97502",
            "codesPostaux": ["97500"],
            "codeDepartement": "975",
            "codeRegion": "975",
            "population": 5500,
            "type": "commune-actuelle",
        },
    ]
    departements = [
        {"nom": "Hautes-Alpes", "code": "05", "codeRegion": "93", "zone": "metro"},
        {"nom": "Saint-Pierre-et-Miquelon", "code": "975", "codeRegion": "975", "zone": "com"},
    ]
    regions = [
        {"nom": "Provence-Alpes-Côte d'Azur", "code": "93", "zone": "metro"},
        {"nom": "Saint-Pierre-et-Miquelon", "code": "975", "zone": "com"},
    ]
    return communes, departements, regions


@pytest.fixture(scope="module")
def geoapi_payloads() -> tuple[list[Any], list[Any], list[Any]]:
    """What fetch_referentials asks the simulator for, fetched once for the module."""
    import asyncio

    async def fetch() -> tuple[list[Any], list[Any], list[Any]]:
        client = TestClient(TestServer(make_app(), host="127.0.0.1"))
        await client.start_server()
        try:
            answers = []
            for path, params in (
                ("/communes", COMMUNES_PARAMS),
                ("/departements", DEPARTEMENTS_PARAMS),
                ("/regions", REGIONS_PARAMS),
            ):
                response = await client.get(path, params=params)
                assert response.status == 200
                answers.append(await response.json())
            return answers[0], answers[1], answers[2]
        finally:
            await client.close()

    return asyncio.run(fetch())


@pytest.fixture(scope="module")
def from_simulator(geoapi_payloads: tuple[list[Any], list[Any], list[Any]]) -> Referentials:
    return Referentials.from_geoapi(*geoapi_payloads)


def test_bundled_is_cached_and_the_default() -> None:
    refs = bundled()
    assert refs is bundled()
    assert cities(q="gap", refs=refs) == cities(q="gap")
    assert departments(refs=refs) == departments()
    assert regions(refs=refs) == regions()


def test_the_simulator_round_trip_answers_like_the_bundle(from_simulator: Referentials) -> None:
    assert from_simulator == bundled()
    for query in (
        {"q": "gap"},
        {"q": "lyon 3"},
        {"q": "st etienne"},
        {"q": "75"},
        {"id": "05061.05000"},
        {"code": "97502"},
        {"department_code": "2A", "page_limit": ALL},
        {"region_code": "975", "page_limit": ALL},
        {"page_limit": ALL, "ordering": "-population,name"},
    ):
        assert cities(**query, refs=from_simulator) == cities(**query), query
    assert departments(refs=from_simulator) == departments()
    assert departments(q="corse", refs=from_simulator) == departments(q="corse")
    assert regions(refs=from_simulator) == regions()
    assert regions(id="11", refs=from_simulator) == regions(id="11")


def test_payload_round_trip_is_exact(from_simulator: Referentials) -> None:
    payload = bundled().to_payload()
    assert payload["version"] == referentials.PAYLOAD_VERSION
    restored = Referentials.from_payload(json.loads(json.dumps(payload)))
    assert restored == bundled()
    assert restored.to_payload() == payload
    assert from_simulator.to_payload() == payload
    assert cities(q="marseille", refs=restored) == cities(q="marseille")


def test_payload_keeps_communes_without_postcode() -> None:
    # They make no city item, but must survive a round trip.
    payload = bundled().to_payload()
    empty = [row for row in payload["communes"] if not row["codesPostaux"]]
    assert len(empty) == 5
    assert cities(code=empty[0]["code"]) == []


def test_small_referentials_answer_only_their_data() -> None:
    refs = Referentials.from_geoapi(*_small_payloads(), **SMALL)
    assert [item["id"] for item in cities(refs=refs)] == ["05061.05000", "05061.05010", "97502.97500"]
    assert cities(q="saint pierre", refs=refs)[0]["department_name"] == "Saint-Pierre-et-Miquelon"
    # Collectivities are not listed as departments or regions, as with the bundle.
    assert [item["code"] for item in departments(refs=refs)] == ["05"]
    assert [item["code"] for item in regions(refs=refs)] == ["93"]
    assert repr(refs) == "Referentials(2 communes, 2 departments, 2 regions)"


def test_optional_fields_have_defaults() -> None:
    communes, departements, regions_ = _small_payloads()
    for key in ("codesPostaux", "population", "codeRegion", "type"):
        del communes[1][key]
    del departements[1]["codeRegion"]
    refs = Referentials.from_geoapi(communes, departements, regions_, **SMALL)
    commune = refs.to_payload()["communes"][1]
    assert commune["codesPostaux"] == [] and commune["population"] == 0 and commune["type"] == "commune-actuelle"
    assert commune["codeRegion"] is None
    assert Referentials.from_payload(refs.to_payload(), **SMALL) == refs


def test_regions_without_zone_take_their_departments() -> None:
    payload = bundled().to_payload()
    zoneless = [{"nom": row["nom"], "code": row["code"]} for row in payload["regions"]]
    refs = Referentials.from_geoapi(payload["communes"], payload["departements"], zoneless)
    assert refs == bundled()
    assert regions(refs=refs) == regions()
    communes, departements, regions_ = _small_payloads()
    del regions_[1]["zone"]
    departements.pop()
    communes.pop()
    with pytest.raises(ValueError, match=r"regions\[1\] \(code '975'\): field 'zone' is missing and no department"):
        Referentials.from_geoapi(communes, departements, regions_, **SMALL)
    # A department must say its zone.
    communes, departements, regions_ = _small_payloads()
    del departements[0]["zone"]
    with pytest.raises(ValueError, match=r"departements\[0\] \(code '05'\): field 'zone'"):
        Referentials.from_geoapi(communes, departements, regions_, **SMALL)


def test_default_minimums_refuse_partial_answers() -> None:
    with pytest.raises(ValueError, match=r"regions: only 2 rows, fewer than the 18"):
        Referentials.from_geoapi(*_small_payloads())
    payload = bundled().to_payload()
    with pytest.raises(ValueError, match=r"communes: only 29999 rows, fewer than the 30000"):
        Referentials.from_geoapi(payload["communes"][:29_999], payload["departements"], payload["regions"])
    with pytest.raises(ValueError, match=r"departements: only 99 rows"):
        Referentials.from_geoapi(payload["communes"], payload["departements"][:99], payload["regions"])
    with pytest.raises(ValueError, match=r"communes: only 2 rows, fewer than the 3 expected"):
        Referentials.from_geoapi(*_small_payloads(), min_communes=3, min_departements=0, min_regions=0)


@pytest.mark.parametrize(
    ("which", "index", "change", "message"),
    [
        ("communes", 0, {"code": 5061}, r"communes\[0\]: field 'code' must be a string matching"),
        ("communes", 1, {"code": "9750"}, r"communes\[1\] \(code '9750'\): field 'code'"),
        ("communes", 0, {"nom": ""}, r"communes\[0\] \(code '05061'\): field 'nom' must be a non-empty string"),
        ("communes", 0, {"codesPostaux": "05000"}, r"\(code '05061'\): field 'codesPostaux' must be a list of 5-digit"),
        ("communes", 0, {"codesPostaux": ["5000"]}, r"field 'codesPostaux'"),
        ("communes", 1, {"population": -1}, r"communes\[1\] \(code '97502'\): field 'population'"),
        ("communes", 1, {"population": "5500"}, r"field 'population' must be a non-negative integer"),
        ("communes", 0, {"codeDepartement": "06"}, r"field 'codeDepartement' must be the code of a listed department"),
        ("communes", 0, {"codeRegion": "84"}, r"field 'codeRegion' must be its department's region '93'"),
        ("communes", 0, {"type": "commune-deleguee"}, r"field 'type' must be one of"),
        ("communes", 1, {"code": "05061"}, r"communes\[1\] \(code '05061'\): field 'code' repeats an earlier row"),
        ("departements", 1, {"zone": "abroad"}, r"departements\[1\] \(code '975'\): field 'zone' must be one of"),
        ("departements", 0, {"codeRegion": "84"}, r"departements\[0\] \(code '05'\): field 'codeRegion'"),
        ("departements", 0, {"code": None}, r"departements\[0\]: field 'code'"),
        ("regions", 0, {"nom": None}, r"regions\[0\] \(code '93'\): field 'nom'"),
        ("regions", 1, {"code": "93"}, r"regions\[1\] \(code '93'\): field 'code' must be unique"),
    ],
)
def test_invalid_rows_are_named(which: str, index: int, change: dict[str, Any], message: str) -> None:
    communes, departements, regions_ = _small_payloads()
    rows = {"communes": communes, "departements": departements, "regions": regions_}[which]
    rows[index].update(change)
    with pytest.raises(ValueError, match=message):
        Referentials.from_geoapi(communes, departements, regions_, **SMALL)


def test_rows_and_lists_of_the_wrong_type() -> None:
    communes, departements, regions_ = _small_payloads()
    with pytest.raises(ValueError, match=r"communes\[2\]: expected an object, got str"):
        Referentials.from_geoapi([*communes, "05061"], departements, regions_, **SMALL)
    with pytest.raises(ValueError, match=r"communes: expected a list, got dict"):
        Referentials.from_geoapi({"communes": communes}, departements, regions_, **SMALL)  # type: ignore[arg-type]


def test_from_payload_refuses_other_versions_and_shapes() -> None:
    payload = Referentials.from_geoapi(*_small_payloads(), **SMALL).to_payload()
    assert Referentials.from_payload(copy.deepcopy(payload), **SMALL).to_payload() == payload
    with pytest.raises(ValueError, match=r"version 1 \(version 2\)"):
        Referentials.from_payload({**payload, "version": 2}, **SMALL)
    with pytest.raises(ValueError, match=r"'regions' must be a list"):
        Referentials.from_payload({**payload, "regions": None}, **SMALL)
    with pytest.raises(ValueError, match="version"):
        Referentials.from_payload([], **SMALL)  # type: ignore[arg-type]
    # Persisted data meets the same minimums as a fresh answer.
    with pytest.raises(ValueError, match="fewer than"):
        Referentials.from_payload(payload)


def test_referentials_are_frozen() -> None:
    refs = bundled()
    with pytest.raises(AttributeError):
        refs.communes = ()  # type: ignore[misc]
