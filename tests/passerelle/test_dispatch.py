"""Routing, parameters, bodies, envelope: the Passerelle-compatible call path."""

from __future__ import annotations

import pytest


@pytest.fixture
async def sample(make_instance):
    return await make_instance("sample", "demo", config={"greeting": "bonjour"})


async def test_success_envelope(hub_client, sample):
    response = await hub_client.get("/sample/demo/hello?name=Camille")
    assert response.status == 200
    assert await response.json() == {"err": 0, "data": "bonjour Camille"}


async def test_trailing_slash_is_optional(hub_client, sample):
    for url in ("/sample/demo/hello/?name=A", "/sample/demo/hello?name=A"):
        assert (await (await hub_client.get(url)).json())["data"] == "bonjour A"


async def test_typed_parameters_are_converted(hub_client, sample):
    response = await hub_client.get("/sample/demo/hello?name=A&times=2&loud=true")
    assert (await response.json())["data"] == "BONJOUR A BONJOUR A"
    response = await hub_client.get("/sample/demo/typed-values?day=2026-11-28&kind=b&tags=x&tags=y&ratio=1.5")
    assert (await response.json())["data"] == {"day": "2026-11-28", "kind": "b", "tags": ["x", "y"], "ratio": 1.5}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "missing parameter 'name' (Who to greet): expected string"),
        ("name=A&times=abc", "invalid value for parameter 'times'"),
        ("name=A&times=9", "invalid value for parameter 'times': input should be less than or equal to 5"),
        ("name=A&loud=maybe", "invalid value for parameter 'loud'"),
        ("name=A&colour=red", "unknown parameter 'colour'; this endpoint accepts: name, times, loud"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(hub_client, sample, query, expected):
    response = await hub_client.get(f"/sample/demo/hello?{query}")
    assert response.status == 400
    payload = await response.json()
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.WrongParameter"
    assert payload["err_desc"].startswith(expected), payload["err_desc"]


async def test_publik_parameters_are_never_unknown(hub_client, sample):
    query = "name=A&orig=wcs&NameID=abc&email=x&algo=sha256&timestamp=t&nonce=n&signature=s&apikey=k&format=json"
    response = await hub_client.get(f"/sample/demo/hello?{query}")
    assert response.status == 200


async def test_extra_parameters_go_to_kwargs(hub_client, sample):
    response = await hub_client.get("/sample/demo/anything?a=1&b=2&NameID=x")
    assert (await response.json())["data"] == {"a": "1", "b": "2"}


async def test_patterns_select_the_variant(hub_client, sample):
    assert (await (await hub_client.get("/sample/demo/people")).json())["data"] == ["a", "b"]
    assert (await (await hub_client.get("/sample/demo/people/7/")).json())["data"] == {"id": 7}
    assert (await (await hub_client.get("/sample/demo/people/7")).json())["data"] == {"id": 7}
    assert (await (await hub_client.get("/sample/demo/people/7/children/")).json())["data"] == [70]
    response = await hub_client.get("/sample/demo/people/x/")
    assert response.status == 404
    assert (await response.json())["err_class"] == "passerelle.envelope.NotFound"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/nothing/demo/hello", "unknown connector type 'nothing'"),
        ("/sample/other/hello", "no sample instance named 'other'"),
        ("/sample/demo/nope", "unknown endpoint 'nope' on sample/demo"),
        ("/sample/demo/", None),
    ],
)
async def test_unknown_things_are_404_envelopes(hub_client, sample, url, message):
    response = await hub_client.get(url, headers={"Accept": "application/json"})
    if message is None:  # the instance page exists
        assert response.status == 200
        return
    assert response.status == 404
    payload = await response.json()
    assert payload == {"err": 1, "err_class": "passerelle.envelope.NotFound", "err_desc": message, "data": None}


async def test_unknown_route_is_an_envelope(hub_client):
    response = await hub_client.get("/just-one-segment")
    assert response.status == 404
    assert (await response.json())["err"] == 1


async def test_wrong_method_is_405_with_allow(hub_client, sample):
    response = await hub_client.post("/sample/demo/hello?name=A")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert (await response.json())["err_class"] == "passerelle.envelope.MethodNotAllowed"


async def test_pydantic_body(hub_client, sample):
    response = await hub_client.post("/sample/demo/create?NameID=abc", json={"name": "Camille", "age": 30})
    assert await response.json() == {"err": 0, "data": {"name": "Camille", "age": 30}, "name_id": "abc"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "a JSON body is required"),
        (b"{not json", "the body is not valid JSON"),
        (b'{"name": "C"}', "invalid body at 'age': Field required"),
        (b'{"name": "C", "age": -1}', "invalid body at 'age': Input should be greater than or equal to 0"),
        (b'{"name": "C", "age": 1, "x": 1}', "invalid body at 'x': Extra inputs are not permitted"),
    ],
)
async def test_bad_pydantic_body_is_400_naming_the_field(hub_client, sample, body, expected):
    response = await hub_client.post("/sample/demo/create", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    payload = await response.json()
    assert payload["err_class"] == "passerelle.envelope.InvalidBody"
    assert payload["err_desc"].startswith(expected), payload["err_desc"]


async def test_json_schema_body(hub_client, sample):
    response = await hub_client.put("/sample/demo/store", json={"title": "T", "pages": 3})
    assert (await response.json())["data"] == {"title": "T", "pages": 3}
    response = await hub_client.post("/sample/demo/store", json={"title": "T", "pages": 0})
    assert response.status == 400
    assert (await response.json())["err_desc"] == "invalid body at 'pages': 0 is less than the minimum of 1"
    response = await hub_client.post("/sample/demo/store", json={"pages": 2})
    assert (await response.json())["err_desc"] == "invalid body at '(root)': 'title' is a required property"


async def test_raw_mode_has_no_envelope(hub_client, sample):
    response = await hub_client.get("/sample/demo/raw?q=Paris")
    assert await response.json() == [{"display_name": "Paris"}]


async def test_business_error_is_200_by_default(hub_client, sample):
    response = await hub_client.get("/sample/demo/refuse")
    assert response.status == 200
    assert await response.json() == {
        "err": 1,
        "err_class": "passerelle.envelope.APIError",
        "err_desc": "no such family",
        "data": {"code": "F1"},
    }
    response = await hub_client.get("/sample/demo/refuse?status=409")
    assert response.status == 409


async def test_unexpected_exception_is_500_without_details(hub_client, sample, capsys):
    response = await hub_client.get("/sample/demo/crash", headers={"X-Request-ID": "req-123"})
    assert response.status == 500
    assert response.headers["X-Request-ID"] == "req-123"
    payload = await response.json()
    assert payload["err_class"] == "passerelle.envelope.InternalError"
    assert payload["err_desc"] == "internal error (request id req-123)"
    assert "password" not in await response.text()


async def test_request_id_is_created_when_absent(hub_client, sample):
    response = await hub_client.get("/sample/demo/ping")
    assert len(response.headers["X-Request-ID"]) == 32


async def test_jsonp_callback(hub_client, sample):
    response = await hub_client.get("/sample/demo/ping?callback=cb_1")
    assert response.content_type == "application/javascript"
    assert await response.text() == 'cb_1({"err":0,"data":"pong"});'
    # A callback that is not a plain identifier is ignored rather than reflected.
    response = await hub_client.get("/sample/demo/ping?callback=alert(1)//")
    assert response.content_type == "application/json"


async def test_a_query_parameter_cannot_shadow_a_path_group(make_instance, hub_client):
    await make_instance("sample", "demo")
    response = await hub_client.get("/sample/demo/tagged/news/?lang=fr")
    assert (await response.json())["data"] == {"tag": "news", "lang": "fr"}
    response = await hub_client.get("/sample/demo/tagged/news/?tag=other")
    assert response.status == 400
    assert (await response.json())["err_desc"] == "parameter 'tag' cannot be given in the query string"
