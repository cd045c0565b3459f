"""The OpenAPI 3.1 document ``GET /openapi.json``."""

from __future__ import annotations

from typing import Annotated

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

import passerelle
from passerelle import Connector, Param, endpoint
from passerelle.description import endpoint_path, sorted_specs
from passerelle.openapi import ERROR_RESPONSES, build_type_openapi, hoist
from passerelle.plugins import discover_types
from tests.passerelle.sample import Sample
from tests.passerelle.test_docpage import HiddenSample


class Address(BaseModel):
    street: str = Field(description="Street and number.")
    city: str


class Household(BaseModel):
    address: Address
    members: list[Household] = Field(default_factory=list, description="Nested households (recursive).")


class Tricky(Connector):
    """Schemas and patterns the generator must rewrite: nested and recursive pydantic
    models, a hand-written schema with $defs and a self-reference, patterns
    without example_pattern."""

    slug = "tricky"
    title = "Tricky"
    description = "Corner cases of the OpenAPI generator."

    @endpoint(description="Nested pydantic body.", methods=["post"], body=Household)
    async def household(self, body: Household) -> None:
        return None

    @endpoint(
        description="Hand-written schema with $defs and a recursive $ref to the root.",
        methods=["patch"],
        body={
            "type": "object",
            "properties": {
                "tag": {"$ref": "#/$defs/Tag"},
                "children": {"type": "array", "items": {"$ref": "#"}},
            },
            "$defs": {"Tag": {"type": "string", "minLength": 2}},
        },
        response_schema={"type": "object", "properties": {"tag": {"$ref": "#/$defs/Tag"}}, "$defs": {"Tag": {}}},
    )
    async def tree(self, body: dict[str, object]) -> None:
        return None

    @endpoint(description="A plain pattern.", pattern=r"^(?P<code>\d{5})/$")
    async def commune(self, code: Annotated[str, Param("INSEE code", example="75056")]) -> str:
        return code

    @endpoint(description="A pattern that is no path template.", pattern=r"^(a|b)+/$")
    async def letters(self) -> str:
        return "ab"

    @endpoint(description="A data source.", datasource=True, cache_duration=60)
    async def items(self) -> list[dict[str, str]]:
        return []


@pytest.fixture
def hub_connector_types():
    return {**discover_types(), "sample": Sample, "hidden-sample": HiddenSample, "tricky": Tricky}


@pytest.fixture
async def sample(make_instance):
    return await make_instance("sample", "demo")


def check(document: dict) -> None:
    """Valid OpenAPI, and every $ref resolves inside the document (the validator does not
    follow references in the schemas of operations: a left-over ``#/$defs/...`` passes it)."""
    validate(document)
    check_refs(document)


def check_refs(document: dict) -> None:
    def resolve(ref: str):
        assert ref.startswith("#/"), ref
        target = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"unresolved $ref {ref}"
            target = target[part]

    def visit(value):
        if isinstance(value, dict):
            assert "$defs" not in value and "definitions" not in value
            if isinstance(value.get("$ref"), str):
                resolve(value["$ref"])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(document)


async def fetch(client, query: str = "") -> dict:
    response = await client.get(f"/openapi.json{query}")
    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    check(document)
    return document


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(path, verb, op) for path, item in document["paths"].items() for verb, op in item.items()]


async def test_document_is_valid_and_lists_every_endpoint(hub_client, sample):
    document = await fetch(hub_client)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == passerelle.__version__
    assert document["info"]["title"] == "Passerelle hub"
    assert document["servers"][0]["url"].startswith("http://127.0.0.1:")
    assert document["tags"][0]["name"] == "sample/demo"
    expected = {(f"/sample/demo/{endpoint_path(s)}", m.lower()) for s in sorted_specs(Sample) for m in s.methods}
    assert {(path, verb) for path, verb, _ in operations(document)} == expected
    assert "/sample/demo/people/{person_id}/children/" in document["paths"]
    ids = [op["operationId"] for _, _, op in operations(document)]
    # One operation per variant and method (store has POST and PUT).
    assert len(ids) == len(set(ids)) == sum(len(s.methods) for s in sorted_specs(Sample)) >= 15
    assert all(op["tags"] == ["sample/demo"] for _, _, op in operations(document))


async def test_parameters_carry_schema_examples_and_requirement(hub_client, sample):
    paths = (await fetch(hub_client))["paths"]
    hello = {p["name"]: p for p in paths["/sample/demo/hello/"]["get"]["parameters"]}
    assert hello["name"] == {
        "name": "name",
        "in": "query",
        "required": True,
        "description": "Who to greet",
        "example": "Camille",
        "schema": {"type": "string", "description": "Who to greet", "examples": ["Camille"]},
    }
    assert hello["times"]["required"] is False
    assert hello["times"]["schema"]["minimum"] == 1 and hello["times"]["schema"]["maximum"] == 5
    assert hello["times"]["schema"]["default"] == 1
    assert hello["loud"]["example"] is False
    typed = {p["name"]: p for p in paths["/sample/demo/typed-values/"]["get"]["parameters"]}
    assert typed["day"]["schema"]["format"] == "date"
    assert typed["kind"]["schema"]["enum"] == ["a", "b"]
    assert typed["tags"]["schema"]["type"] == "array"
    assert typed["tags"]["example"] == ["x"]  # a repeated parameter's example is a list
    assert typed["tags"]["explode"] is True
    person = paths["/sample/demo/people/{person_id}/"]["get"]["parameters"]
    assert person == [
        {
            "name": "person_id",
            "in": "path",
            "required": True,
            "description": "Person number",
            "example": 3,
            "schema": {"type": "integer", "description": "Person number", "examples": [3]},
        }
    ]


async def test_request_bodies(hub_client, sample):
    document = await fetch(hub_client)
    create = document["paths"]["/sample/demo/create/"]["post"]["requestBody"]
    assert create["required"] is True
    assert create["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Person"}
    person = document["components"]["schemas"]["Person"]
    assert person["required"] == ["name", "age"]
    assert person["properties"]["age"]["minimum"] == 0
    store = document["paths"]["/sample/demo/store/"]
    for verb in ("post", "put"):
        schema = store[verb]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["title"]
        assert schema["properties"]["pages"] == {"type": "integer", "minimum": 1}
    assert "requestBody" not in document["paths"]["/sample/demo/hello/"]["get"]


async def test_envelopes_and_error_responses(hub_client, sample):
    document = await fetch(hub_client)
    components = document["components"]
    envelope = components["schemas"]["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"err", "err_class", "err_desc", "data"}
    assert envelope["required"] == ["err", "err_class", "err_desc"]
    assert set(components["responses"]) == {name for name, _, _ in ERROR_RESPONSES.values()}
    not_found = components["responses"]["NotFound"]["content"]["application/json"]
    assert not_found["example"]["err_class"] == "passerelle.envelope.NotFound"

    hello = document["paths"]["/sample/demo/hello/"]["get"]["responses"]
    success, error = hello["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert success["properties"]["err"] == {"const": 0}
    assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}
    for status in ("400", "401", "403", "404", "405", "500"):
        assert hello[status]["$ref"].startswith("#/components/responses/")
    raw = document["paths"]["/sample/demo/raw/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "anyOf" in raw["schema"] and "oneOf" not in raw["schema"]
    assert "Raw answer" in document["paths"]["/sample/demo/raw/"]["get"]["description"]


async def test_security(hub_client, make_instance):
    await make_instance("sample", "open")  # an open API user holds every right
    await make_instance("sample", "closed", access=None)
    document = await fetch(hub_client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["apikey"] == {**schemes["apikey"], "type": "apiKey", "in": "query", "name": "apikey"}
    assert schemes["basic"]["scheme"] == "basic"
    paths = document["paths"]
    ping = paths["/sample/open/ping/"]["get"]
    assert ping["security"] == []
    assert "401" not in ping["responses"] and "403" not in ping["responses"]
    assert paths["/sample/closed/secret/"]["get"]["security"] == [{"apikey": []}, {"basic": []}]
    assert paths["/sample/open/secret/"]["get"]["security"] == [{"apikey": []}, {"basic": []}, {}]
    assert paths["/sample/open/secret/"]["get"]["x-passerelle-perm"] == "can_admin"


async def test_empty_hub_document_is_valid(hub_client):
    document = await fetch(hub_client)
    assert document["paths"] == {}
    assert document["tags"] == []
    assert "ErrorEnvelope" in document["components"]["schemas"]


async def test_filters(hub_client, make_instance):
    await make_instance("sample", "demo")
    await make_instance("sample", "other")
    await make_instance("hidden-sample", "h")
    prefixes = lambda document: {"/".join(p.split("/")[:3]) for p in document["paths"]}  # noqa: E731
    assert prefixes(await fetch(hub_client)) == {"/sample/demo", "/sample/other", "/hidden-sample/h"}
    assert prefixes(await fetch(hub_client, "?type=sample")) == {"/sample/demo", "/sample/other"}
    assert prefixes(await fetch(hub_client, "?instance=sample/other")) == {"/sample/other"}
    for query, message in (
        ("?type=nope", "unknown connector type 'nope'"),
        ("?instance=sample/nope", "no sample instance named 'nope'"),
    ):
        response = await hub_client.get(f"/openapi.json{query}")
        assert response.status == 404
        assert (await response.json())["err_desc"] == message


async def test_hidden_endpoints_are_left_out(hub_client, make_instance):
    await make_instance("hidden-sample", "h")
    document = await fetch(hub_client)
    assert "/hidden-sample/h/hello/" in document["paths"]
    assert not any("internal" in path for path in document["paths"])


async def test_schemas_are_hoisted_and_patterns_templated(hub_client, make_instance):
    await make_instance("tricky", "t")
    await make_instance("tricky", "u")
    document = await fetch(hub_client)
    schemas = document["components"]["schemas"]
    body = document["paths"]["/tricky/t/household/"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Household"}
    assert schemas["Household"]["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert schemas["Household"]["properties"]["members"]["items"] == {"$ref": "#/components/schemas/Household"}
    assert schemas["Address"]["properties"]["street"]["description"] == "Street and number."
    # Two instances of one type share their components rather than duplicating them.
    assert not any(name.startswith(("Household_", "Address_")) for name in schemas)

    tree = document["paths"]["/tricky/t/tree/"]["patch"]
    tree_ref = tree["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    root = schemas[tree_ref.rsplit("/", 1)[1]]
    assert root["properties"]["children"]["items"] == {"$ref": tree_ref}
    assert root["properties"]["tag"] == {"$ref": "#/components/schemas/Tag"}
    assert schemas["Tag"] == {"type": "string", "minLength": 2}
    # The response's own "Tag" differs: it gets another name instead of overwriting.
    data = tree["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][0]["properties"]["data"]
    assert data["properties"]["tag"] == {"$ref": "#/components/schemas/Tag_2"}
    assert schemas["Tag_2"] == {}

    commune = document["paths"]["/tricky/t/commune/{code}/"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["example"]) for p in commune] == [("code", "path", "75056")]
    letters = document["paths"]["/tricky/t/letters/{rest}"]["get"]["parameters"]
    assert letters[0]["name"] == "rest" and r"^(a|b)+/$" in letters[0]["description"]
    items = document["paths"]["/tricky/t/items/"]["get"]
    assert items["x-passerelle-datasource"] is True
    assert "cached for 60 s" in items["description"]
    data = items["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][0]["properties"]["data"]
    assert data["items"]["required"] == ["id", "text"]


@pytest.mark.parametrize("slug", sorted(discover_types()))
def test_every_installed_type_documents_validly(slug):
    cls = discover_types()[slug]
    document = build_type_openapi([cls], "https://hub.example.org")
    check(document)
    expected = {f"/{slug}/{{slug}}/{endpoint_path(s)}" for s in sorted_specs(cls)}
    assert set(document["paths"]) == expected
    for _, _, op in operations(document):
        assert op["parameters"][0]["name"] == "slug"


def test_all_types_together_validate():
    types = [*discover_types().values(), Sample, HiddenSample, Tricky]
    document = build_type_openapi(types)
    check(document)
    assert "/sample/{slug}/hello/" in document["paths"]
    assert "/tricky/{slug}/commune/{code}/" in document["paths"]
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_hoist_keeps_unrelated_schemas_apart():
    components: dict = {"Item": {"type": "integer"}}
    schema = {"type": "array", "items": {"$ref": "#/$defs/Item"}, "$defs": {"Item": {"type": "string"}}}
    assert hoist(schema, components) == {"type": "array", "items": {"$ref": "#/components/schemas/Item_2"}}
    with pytest.raises(AssertionError, match="unresolved"):
        check_refs({"paths": {"/x": {"get": {"schema": {"$ref": "#/$defs/Item"}}}}})
    assert components == {"Item": {"type": "integer"}, "Item_2": {"type": "string"}}
    assert schema["$defs"] == {"Item": {"type": "string"}}  # the declaration is left untouched
