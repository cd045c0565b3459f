"""base-adresse on its embedded index, with no network: every endpoint in its documented shape."""

from __future__ import annotations

import pytest

from connectors.sig.baseadresse import BaseAdresse
from tests.connectors.sig.baseadresse.conftest import SAMPLE, get_json, wait_ready

URL = "/base-adresse/test"
LOCAL = {"backends": ["local"]}


async def test_search_speaks_nominatim(make_ban, hub_client):
    await make_ban(**LOCAL)
    results = await get_json(hub_client, f"{URL}/search", q="51 rue de rivoli paris", format="json")
    assert isinstance(results, list)  # a bare list: no envelope
    first = results[0]
    assert first["display_name"] == "51 Rue de Rivoli 75001 Paris"
    assert (first["lat"], first["lon"]) == ("48.858899", "2.34666")  # strings, as Nominatim
    assert first["address"] == {
        "house_number": "51",
        "road": "Rue de Rivoli",
        "postcode": "75001",
        "city": "Paris",
        "citycode": "75101",
        "country": "France",
    }
    assert first["id"] == first["ban_id"] == "75101_8249_00051"
    assert first["type"] == "housenumber"
    assert 0 < first["score"] <= 1
    assert len(results) <= 5


async def test_search_options(make_ban, hub_client):
    await make_ban(**LOCAL)
    # Suffix, typo, abbreviation, no city.
    found = await get_json(hub_client, f"{URL}/search", q="194b r de rivolli")
    assert found[0]["id"] == "75101_8249_00194_b"
    assert found[0]["address"]["house_number"] == "194 bis"  # the index writes suffixes in full
    assert await get_json(hub_client, f"{URL}/search", q="rivoli", limit=2) != []
    assert len(await get_json(hub_client, f"{URL}/search", q="rue", limit=2)) <= 2
    only_05 = await get_json(hub_client, f"{URL}/search", q="rue", postcode="05190", limit=20)
    assert only_05 and {r["address"]["postcode"] for r in only_05} == {"05190"}
    # Passerelle's name for the filter.
    assert await get_json(hub_client, f"{URL}/search", q="rue", zipcode="05190", limit=20) == only_05
    in_jarjayes = await get_json(hub_client, f"{URL}/search", q="route", citycode="05068")
    assert in_jarjayes and {r["address"]["citycode"] for r in in_jarjayes} == {"05068"}
    streets = await get_json(hub_client, f"{URL}/search", q="rue de rivoli", type="street")
    assert streets[0]["type"] == "street" and "house_number" not in streets[0]["address"]
    town = await get_json(hub_client, f"{URL}/search", q="remollon", type="municipality")
    assert town[0]["display_name"] == "Remollon" and "road" not in town[0]["address"]
    # Too short to search: nothing, like the BAN.
    assert await get_json(hub_client, f"{URL}/search", q="ri") == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing parameter 'q'"),
        ({"q": "  "}, "missing parameter 'q'"),
        ({"q": "rivoli", "format": "xml"}, "only 'json'"),
        ({"q": "rivoli", "lat": "48.8"}, "both 'lat' and 'lon'"),
        ({"q": "rivoli", "citycode": "751"}, "citycode"),
        ({"q": "rivoli", "postcode": "7500"}, "postcode"),
        ({"q": "rivoli", "limit": "0"}, "limit"),
        ({"q": "rivoli", "limit": "21"}, "limit"),
        ({"q": "rivoli", "type": "city"}, "type"),
        ({"q": "rivoli", "lat": "91", "lon": "2"}, "lat"),
        ({"q": "rivoli", "postcode": "75001", "zipcode": "05190"}, "same filter"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_search_refuses_bad_input_clearly(make_ban, hub_client, params, message):
    await make_ban(**LOCAL)
    payload = await get_json(hub_client, f"{URL}/search", status=400, **params)
    assert payload["err"] == 1
    assert message in payload["err_desc"]


async def test_search_accepts_what_wcs_sends(make_ban, hub_client):
    await make_ban(**LOCAL)
    results = await get_json(hub_client, f"{URL}/search", q="rue cambon", format="json", **{"accept-language": "fr"})
    assert results[0]["address"]["road"] == "Rue Cambon"


async def test_reverse_speaks_nominatim(make_ban, hub_client):
    await make_ban(**LOCAL)
    # A few metres from 51 rue de Rivoli.
    found = await get_json(
        hub_client,
        f"{URL}/reverse",
        lat="48.85890",
        lon="2.34667",
        format="json",
        addressdetails="1",
        **{"accept-language": "fr"},
    )
    assert isinstance(found, dict)
    assert found["display_name"] == "51 Rue de Rivoli 75001 Paris"
    assert found["address"]["house_number"] == "51"
    assert found["distance"] < 5


async def test_reverse_takes_lambert_93(make_ban, hub_client):
    await make_ban(**LOCAL)
    from connectors.sig.coordinates import wgs84_to_lambert93

    x, y = wgs84_to_lambert93(2.34666, 48.858899)
    found = await get_json(hub_client, f"{URL}/reverse", x=str(x), y=str(y))
    assert found["id"] == "75101_8249_00051"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give 'lat' and 'lon'"),
        ({"lat": "48.8"}, "give 'lat' and 'lon'"),
        ({"x": "651500"}, "both 'x' and 'y'"),
        ({"x": "651500", "y": "6865844", "lat": "48.8", "lon": "2.3"}, "not both"),
        # A lon/lat pair given as x/y: outside Lambert-93's area.
        ({"x": "2.34", "y": "48.85"}, "outside Lambert-93"),
        ({"lat": "48.8", "lon": "200"}, "lon"),
        ({"lat": "48.8", "lon": "2.3", "format": "jsonv2"}, "only 'json'"),
    ],
)
async def test_reverse_refuses_bad_input_clearly(make_ban, hub_client, params, message):
    await make_ban(**LOCAL)
    payload = await get_json(hub_client, f"{URL}/reverse", status=400, **params)
    assert message in payload["err_desc"]


async def test_reverse_far_from_every_address(make_ban, hub_client):
    await make_ban(**LOCAL)
    # Lyon: the index covers Paris 1er and three Alpine communes. Nominatim's answer for nothing.
    assert await get_json(hub_client, f"{URL}/reverse", lat="45.76", lon="4.83") == {"error": "Unable to geocode"}


async def test_addresses_data_source(make_ban, hub_client):
    await make_ban(**LOCAL)
    payload = await get_json(hub_client, f"{URL}/addresses", q="3 chemin des ceris")
    assert payload["err"] == 0
    item = payload["data"][0]
    assert item["id"] == "05115_6fssw6_00003"
    assert item["text"] == "3 Chemin des Cerisiers 05190 Remollon"
    assert item["address"]["postcode"] == "05190"
    assert {"lat", "lon", "ban_id", "type"} <= set(item)
    # Looked up by the id it gave.
    again = await get_json(hub_client, f"{URL}/addresses", id=item["id"])
    assert again["data"] == [{**item, "score": again["data"][0]["score"]}]
    assert (await get_json(hub_client, f"{URL}/addresses", id="nope"))["data"] == []
    assert (await get_json(hub_client, f"{URL}/addresses", q="ch"))["data"] == []
    assert (await get_json(hub_client, f"{URL}/addresses"))["data"] == []
    assert len((await get_json(hub_client, f"{URL}/addresses", q="rue", page_limit="2"))["data"]) == 2


async def test_ids_are_found_after_a_restart(make_ban, hub_app, hub_settings):
    connector = await make_ban(**LOCAL)
    before = connector.local.version
    # Another process (or the same one restarted) on the same data directory: it loads, it does not build.
    again = BaseAdresse(connector.instance, connector.config, hub_settings)
    assert await again.local.load()
    assert again.local.version == before
    found = again.local.index.get("75101_8249_00194_b")
    assert found["properties"]["label"] == "194 bis Rue de Rivoli 75001 Paris"
    assert not await again.local.refresh()  # sources unchanged: no build
    await again.close()


async def test_streets_data_source(make_ban, hub_client):
    await make_ban(**LOCAL)
    listed = (await get_json(hub_client, f"{URL}/streets", citycode="05068"))["data"]
    names = [item["text"] for item in listed]
    assert names == sorted(names, key=str.casefold)
    assert "Route du Col" in names
    item = listed[names.index("Route du Col")]
    assert (item["city"], item["citycode"], item["zipcode"]) == ("Jarjayes", "05068", "05130")
    assert (await get_json(hub_client, f"{URL}/streets", id=item["id"]))["data"] == [item]
    found = (await get_json(hub_client, f"{URL}/streets", q="route du col"))["data"]
    assert found[0]["text"] == "Route du Col"
    assert all("house_number" not in i for i in found)
    assert len((await get_json(hub_client, f"{URL}/streets", citycode="05068", page_limit="3"))["data"]) == 3
    error = await get_json(hub_client, f"{URL}/streets", status=400)
    assert "citycode or postcode" in error["err_desc"]


async def test_referentials(make_ban, hub_client):
    await make_ban(**LOCAL)
    cities = (await get_json(hub_client, f"{URL}/cities", q="gap"))["data"]
    assert cities[0]["id"] == "05061.05000" and cities[0]["text"] == "Gap 05000"
    assert (await get_json(hub_client, f"{URL}/cities", id="05061.05000"))["data"][0]["name"] == "Gap"
    departments = (await get_json(hub_client, f"{URL}/departments", id="05"))["data"]
    assert departments[0]["text"] == "05 - Hautes-Alpes"
    regions = (await get_json(hub_client, f"{URL}/regions", q="bretagne"))["data"]
    assert regions[0]["code"] == "53"
    error = await get_json(hub_client, f"{URL}/cities", status=400, q="gap", ordering="altitude")
    assert "altitude" in error["err_desc"]


async def test_a_failed_build_says_why(make_ban, hub_client, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("nothing;we;know\n1;2;3\n", encoding="utf-8")
    connector = await make_ban(wait=False, sources=[str(broken)], **LOCAL)
    for _ in range(600):
        if connector.local.status()["state"] == "failed":
            break
        await __import__("asyncio").sleep(0.05)
    payload = await get_json(hub_client, f"{URL}/addresses", status=503, q="rivoli")
    assert "could not be built" in payload["err_desc"]
    assert "broken.csv" in payload["err_desc"]


async def test_sample_instance_waits_ready(make_ban):
    connector = await make_ban("other", sources=[str(SAMPLE)], **LOCAL)
    await wait_ready(connector)
    assert connector.local.status()["addresses"] == 347
