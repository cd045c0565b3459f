"""Tests of the opening-hours connector, written as any plugin author would:
with the hub's test kit only (fixtures make_instance, hub_client, fake_upstream
and check_conformance), against a fake of the town's API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from passerelle import UpstreamUnavailable
from passerelle.testing import ADMIN_TOKEN, check_conformance

TOKEN = "s3cret-token"

PLACES = [
    {"id": "mairie", "name": "Hôtel de ville", "address": "1 place de la République", "kind": "town-hall"},
    {"id": "mediatheque-centre", "name": "Médiathèque du centre", "address": "2 rue des Écoles", "kind": "library"},
    {"id": "piscine", "name": "Piscine Jean Bouin", "address": "8 avenue du Stade", "kind": "pool"},
]
MEDIATHEQUE = {
    **PLACES[1],
    "weekly": {
        "tuesday": [["10:00", "12:30"], ["14:00", "18:00"]],
        "thursday": [["14:00", "19:00"]],
        "saturday": [["10:00", "17:00"]],
    },
    "closures": [{"date": "2026-12-25", "reason": "Noël"}],
}


@pytest.fixture
async def api(fake_upstream):
    """The town's API, with the answers most tests need."""
    fake_upstream.reply("GET", "/api/places", json={"places": PLACES})
    fake_upstream.reply("GET", "/api/places/mediatheque-centre", json=MEDIATHEQUE)
    fake_upstream.reply("GET", "/api/places/gymnase", status=404, json={"detail": "not found"})
    fake_upstream.reply("GET", "/api/status", json={"status": "ok"})
    return fake_upstream


@pytest.fixture
async def hours(make_instance, api):
    config = {"base_url": f"{api.url}/api/", "api_token": TOKEN, "timeout": 2}
    return await make_instance("opening-hours", "ville", config=config)


async def test_conformance(hub_client, hours):
    assert await check_conformance(hub_client, hours) == []


async def test_data_source_lists_every_place(hub_client, hours, api):
    response = await hub_client.get("/opening-hours/ville/places")
    assert response.status == 200
    assert await response.json() == {
        "err": 0,
        "data": [
            {"id": "mairie", "text": "Hôtel de ville", "address": "1 place de la République", "kind": "town-hall"},
            {
                "id": "mediatheque-centre",
                "text": "Médiathèque du centre",
                "address": "2 rue des Écoles",
                "kind": "library",
            },
            {"id": "piscine", "text": "Piscine Jean Bouin", "address": "8 avenue du Stade", "kind": "pool"},
        ],
    }
    [request] = api.requests
    assert (request.method, request.path) == ("GET", "/api/places")
    assert request.headers["X-Api-Key"] == TOKEN


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("q=mediatheque", ["mediatheque-centre"]),  # accents and case do not matter
        ("q=ECOLES", ["mediatheque-centre"]),  # the address is searched too
        ("q=place", ["mairie"]),
        ("q=nowhere", []),
        ("id=piscine", ["piscine"]),
        ("id=gymnase", []),
        ("id=mairie&q=piscine", []),
    ],
)
async def test_data_source_q_and_id(hub_client, hours, query, ids):
    response = await hub_client.get(f"/opening-hours/ville/places?{query}")
    assert [item["id"] for item in (await response.json())["data"]] == ids


async def test_data_source_is_public(make_instance, hub_client, api):
    config = {"base_url": f"{api.url}/api", "api_token": TOKEN}
    await make_instance("opening-hours", "ville", config=config, access=None)
    response = await hub_client.get("/opening-hours/ville/places?id=mairie")
    assert response.status == 200
    assert (await response.json())["data"][0]["text"] == "Hôtel de ville"
    # The per-place endpoint asks for can_access, which nobody holds here.
    response = await hub_client.get("/opening-hours/ville/place/mairie/")
    assert response.status == 403
    assert (await response.json())["err_class"] == "passerelle.envelope.PermissionDenied"


async def test_list_of_places_is_kept_until_the_periodic_refresh(make_instance, hub_client, fake_upstream):
    fake_upstream.reply("GET", "/api/places", json={"places": PLACES})
    fake_upstream.reply("GET", "/api/places", json={"places": PLACES[:1]})  # then the town closes two places
    config = {"base_url": f"{fake_upstream.url}/api", "api_token": TOKEN}
    hours = await make_instance("opening-hours", "ville", config=config)
    for _ in range(3):
        response = await hub_client.get("/opening-hours/ville/places")
        assert len((await response.json())["data"]) == 3
    assert len(fake_upstream.requests) == 1

    [job] = type(hours).periodic_jobs
    assert (job.method_name, job.seconds, job.description) == ("refresh_places", 3600, "Refreshes the list of places.")
    await getattr(hours, job.method_name)()  # what the scheduler does every hour
    response = await hub_client.get("/opening-hours/ville/places")
    assert [item["id"] for item in (await response.json())["data"]] == ["mairie"]
    assert len(fake_upstream.requests) == 2


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (
            "2026-12-22",  # a Tuesday
            {
                "date": "2026-12-22",
                "open": True,
                "slots": [{"start": "10:00", "end": "12:30"}, {"start": "14:00", "end": "18:00"}],
                "closure": None,
            },
        ),
        ("2026-12-21", {"date": "2026-12-21", "open": False, "slots": [], "closure": None}),  # a Monday
        ("2026-12-25", {"date": "2026-12-25", "open": False, "slots": [], "closure": "Noël"}),  # a closed Friday
    ],
)
async def test_hours_of_one_place(hub_client, hours, day, expected):
    response = await hub_client.get(f"/opening-hours/ville/place/mediatheque-centre/?date={day}")
    assert await response.json() == {
        "err": 0,
        "data": expected,
        "place": {"id": "mediatheque-centre", "text": "Médiathèque du centre"},
    }


async def test_hours_default_to_today(hub_client, hours):
    payload = await (await hub_client.get("/opening-hours/ville/place/mediatheque-centre")).json()
    assert payload["data"]["date"] == date.today().isoformat()


async def test_unknown_place_is_a_404_envelope(hub_client, hours):
    response = await hub_client.get("/opening-hours/ville/place/gymnase/")
    assert response.status == 404
    assert await response.json() == {
        "err": 1,
        "err_class": "passerelle.envelope.NotFound",
        "err_desc": "no place 'gymnase' in the opening-hours API",
        "data": None,
    }


async def test_bad_date_is_a_400_naming_the_parameter(hub_client, hours, api):
    response = await hub_client.get("/opening-hours/ville/place/mediatheque-centre/?date=tomorrow")
    assert response.status == 400
    payload = await response.json()
    assert payload["err_class"] == "passerelle.envelope.WrongParameter"
    assert payload["err_desc"].startswith("invalid value for parameter 'date'")
    assert api.requests == []  # refused before any call to the API


async def test_json_ld_is_raw(hub_client, hours):
    response = await hub_client.get("/opening-hours/ville/place/mediatheque-centre/jsonld/")
    payload = await response.json()
    assert "err" not in payload
    assert payload["@type"] == "CivicStructure"
    assert payload["name"] == "Médiathèque du centre"
    assert payload["openingHoursSpecification"][0] == {
        "@type": "OpeningHoursSpecification",
        "dayOfWeek": "https://schema.org/Tuesday",
        "opens": "10:00",
        "closes": "12:30",
    }
    assert len(payload["openingHoursSpecification"]) == 4


async def test_declare_closure(hub_client, hours, api):
    day = date.today() + timedelta(days=30)
    api.reply("POST", "/api/places/piscine/closures", status=201, json={"id": 17, "date": day.isoformat()})
    body = {"place_id": "piscine", "day": day.isoformat(), "reason": "Vidange annuelle"}
    response = await hub_client.post("/opening-hours/ville/declare-closure?NameID=agent-42", json=body)
    assert await response.json() == {"err": 0, "data": {"id": 17, "date": day.isoformat()}}
    [request] = api.requests
    assert (request.method, request.path, request.headers["X-Api-Key"]) == (
        "POST",
        "/api/places/piscine/closures",
        TOKEN,
    )
    assert request.body == (
        b'{"date": "' + day.isoformat().encode() + b'", "reason": "Vidange annuelle", "declared_by": "agent-42"}'
    )


async def test_closure_conflict_is_a_business_error(hub_client, hours, api):
    day = date.today() + timedelta(days=30)
    api.reply("POST", "/api/places/piscine/closures", status=409, json={"detail": "exists"})
    body = {"place_id": "piscine", "day": day.isoformat(), "reason": "Vidange"}
    response = await hub_client.post("/opening-hours/ville/declare-closure", json=body)
    assert response.status == 200
    assert await response.json() == {
        "err": 1,
        "err_class": "passerelle.envelope.APIError",
        "err_desc": "a closure is already declared for this place on that day",
        "data": {"date": day.isoformat()},
    }


async def test_closure_in_the_past_is_refused_without_calling_the_api(hub_client, hours, api):
    body = {"place_id": "piscine", "day": "2001-01-01", "reason": "Trop tard"}
    response = await hub_client.post("/opening-hours/ville/declare-closure", json=body)
    payload = await response.json()
    assert (response.status, payload["err"], payload["err_desc"]) == (
        200,
        1,
        "a closure cannot be declared in the past",
    )
    assert api.requests == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"place_id": "piscine", "day": "2099-01-01"}, "invalid body at 'reason': Field required"),
        (
            {"place_id": "../admin", "day": "2099-01-01", "reason": "x"},
            "invalid body at 'place_id': String should match",
        ),
        ({"place_id": "piscine", "day": "soon", "reason": "x"}, "invalid body at 'day': Input should be a valid date"),
    ],
)
async def test_bad_closure_body_is_a_400(hub_client, hours, api, body, message):
    response = await hub_client.post("/opening-hours/ville/declare-closure", json=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["err_class"] == "passerelle.envelope.InvalidBody"
    assert payload["err_desc"].startswith(message), payload["err_desc"]
    assert api.requests == []


async def test_declaring_a_closure_needs_its_own_right(make_instance, hub_client, api):
    config = {"base_url": f"{api.url}/api", "api_token": TOKEN}
    connector = await make_instance("opening-hours", "ville", config=config, access=None)
    assert type(connector).permissions() == ["can_access", "can_declare_closures"]
    body = {"place_id": "piscine", "day": "2099-01-01", "reason": "x"}
    response = await hub_client.post("/opening-hours/ville/declare-closure", json=body)
    assert response.status == 403


@pytest.mark.parametrize(
    ("reply", "status", "err_class", "err_desc"),
    [
        ({"status": 500, "body": "oops"}, 502, "UpstreamError", "the application answered HTTP 500"),
        ({"status": 401, "json": {}}, 502, "UpstreamError", "the opening-hours API refused the token"),
        ({"json": {"places": "none"}}, 502, "UpstreamError", "the opening-hours API answered a document of an"),
        ({"body": "<html>", "content_type": "text/html"}, 502, "UpstreamError", "the application answered something"),
        ({"json": {"places": []}, "delay": 0.5}, 503, "UpstreamUnavailable", "the application did not answer in 0.2 s"),
    ],
)
async def test_upstream_failures(make_instance, hub_client, fake_upstream, reply, status, err_class, err_desc):
    fake_upstream.reply("GET", "/api/places", **reply)
    config = {"base_url": fake_upstream.url + "/api", "api_token": TOKEN, "timeout": 0.2}
    await make_instance("opening-hours", "ville", config=config)
    response = await hub_client.get("/opening-hours/ville/places")
    assert response.status == status
    payload = await response.json()
    assert payload["err_class"] == f"passerelle.envelope.{err_class}"
    assert payload["err_desc"].startswith(err_desc), payload["err_desc"]


async def test_check_status(make_instance, fake_upstream):
    fake_upstream.reply("GET", "/api/status", json={"status": "ok"})
    fake_upstream.reply("GET", "/api/status", json={"status": "maintenance"})
    config = {"base_url": f"{fake_upstream.url}/api", "api_token": TOKEN}
    hours = await make_instance("opening-hours", "ville", config=config)
    await hours.check_status()  # up: returns quietly
    with pytest.raises(UpstreamUnavailable, match="the opening-hours API says it is not available"):
        await hours.check_status()
    assert [r.headers["X-Api-Key"] for r in fake_upstream.requests] == [TOKEN, TOKEN]


async def test_token_is_never_shown(hub_client, hours):
    assert TOKEN not in repr(hours.config)
    response = await hub_client.get("/opening-hours/ville/", headers={"Accept": "application/json"})
    assert response.status == 200
    assert TOKEN not in await response.text()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = await hub_client.get("/manage/api/instances/opening-hours/ville/", headers=admin)
    assert response.status == 200
    assert TOKEN not in await response.text()
    response = await hub_client.get("/manage/api/export/", headers=admin)
    assert response.status == 200
    assert TOKEN not in await response.text()
