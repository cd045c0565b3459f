"""Admin JSON API: types, instances (secrets write-only), API users, files, export/import."""

from __future__ import annotations

import base64

import pytest

from passerelle.testing import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SAMPLE = {
    "type": "sample",
    "slug": "demo",
    "title": "Demo",
    "config": {"greeting": "salut", "password": "s3cr3t-value"},
}


async def admin(client, method, path, **kwargs):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = await client.request(method, f"/manage/api{path}", headers=headers, **kwargs)
    return response.status, await response.json()


async def test_requires_a_valid_token(hub_client):
    response = await hub_client.get("/manage/api/instances/")
    assert response.status == 401
    response = await hub_client.get("/manage/api/instances/", headers={"Authorization": "Bearer wrong"})
    assert response.status == 403
    assert (await response.json())["err_desc"] == "admin API: invalid token"


async def test_types_list_schemas_and_endpoints(hub_client):
    status, payload = await admin(hub_client, "GET", "/types/")
    assert status == 200
    sample = next(t for t in payload["data"] if t["slug"] == "sample")
    assert sample["secret_fields"] == ["password"]
    assert "greeting" in sample["config_schema"]["properties"]
    assert {e["name"] for e in sample["endpoints"]} >= {"hello", "people", "create"}
    assert sample["permissions"] == ["can_access", "can_admin"]
    assert sample["periodic_jobs"] == [{"method": "refresh", "seconds": 3600, "description": "Refreshes nothing."}]
    status, payload = await admin(hub_client, "GET", "/types/nothing/")
    assert status == 404


async def test_instance_crud_keeps_secrets_write_only(hub_client):
    status, payload = await admin(hub_client, "POST", "/instances/", json=SAMPLE)
    assert status == 201, payload
    instance = payload["data"]
    assert instance["config"] == {"greeting": "salut"}
    assert instance["secrets_set"] == ["password"]
    assert instance["status"] == {"state": "ready"}
    assert "s3cr3t-value" not in str(payload)

    status, payload = await admin(hub_client, "POST", "/instances/", json=SAMPLE)
    assert status == 409

    # The instance answers at once, in this process.
    response = await hub_client.get("/sample/demo/ping")
    assert (await response.json())["data"] == "pong"

    # PATCH merges the configuration; the secret stays.
    status, payload = await admin(hub_client, "PATCH", "/instances/sample/demo/", json={"config": {"limit": 5}})
    assert status == 200, payload
    assert payload["data"]["config"] == {"greeting": "salut", "limit": 5}
    assert payload["data"]["secrets_set"] == ["password"]

    # PATCH with null clears a secret (and nothing else).
    status, payload = await admin(hub_client, "PATCH", "/instances/sample/demo/", json={"config": {"password": None}})
    assert status == 200, payload
    assert payload["data"]["secrets_set"] == []
    assert payload["data"]["config"] == {"greeting": "salut", "limit": 5}
    status, payload = await admin(
        hub_client, "PATCH", "/instances/sample/demo/", json={"config": {"password": "s3cr3t-value"}}
    )
    assert payload["data"]["secrets_set"] == ["password"]

    # PUT without the secret keeps it; with null it clears it.
    body = {"title": "Demo 2", "config": {"greeting": "hey"}}
    status, payload = await admin(hub_client, "PUT", "/instances/sample/demo/", json=body)
    assert status == 200
    assert payload["data"]["secrets_set"] == ["password"]
    assert payload["data"]["title"] == "Demo 2"
    body["config"]["password"] = None
    status, payload = await admin(hub_client, "PUT", "/instances/sample/demo/", json=body)
    assert payload["data"]["secrets_set"] == []

    status, payload = await admin(hub_client, "GET", "/instances/")
    assert [i["slug"] for i in payload["data"]] == ["demo"]

    status, payload = await admin(hub_client, "DELETE", "/instances/sample/demo/")
    assert status == 200
    response = await hub_client.get("/sample/demo/ping")
    assert response.status == 404
    status, payload = await admin(hub_client, "DELETE", "/instances/sample/demo/")
    assert status == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**SAMPLE, "config": {"limit": 0}}, "field 'config.limit': Input should be greater than or equal to 1"),
        ({**SAMPLE, "config": {"colour": "red"}}, "field 'config.colour': Extra inputs are not permitted"),
        ({**SAMPLE, "type": "nothing"}, "unknown connector type 'nothing'"),
        ({**SAMPLE, "slug": "Bad Slug"}, "'slug': String should match pattern"),
    ],
)
async def test_invalid_instances_are_refused_with_the_field(hub_client, body, expected):
    status, payload = await admin(hub_client, "POST", "/instances/", json=body)
    assert status in (400, 404)
    assert expected in payload["err_desc"], payload["err_desc"]
    status, payload = await admin(hub_client, "GET", "/instances/")
    assert payload["data"] == []


async def test_apiusers_and_access(hub_client):
    status, payload = await admin(
        hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "key": "k-123", "description": "forms"}
    )
    assert status == 201, payload
    assert payload["data"]["key_set"] is True
    assert "k-123" not in str(payload)
    instance = {**SAMPLE, "access": [{"apiuser": "wcs", "perm": "can_access"}]}
    status, payload = await admin(hub_client, "POST", "/instances/", json=instance)
    assert status == 201, payload
    assert (await hub_client.get("/sample/demo/people")).status == 403
    assert (await hub_client.get("/sample/demo/people?apikey=k-123")).status == 200
    basic = {"Authorization": "Basic " + base64.b64encode(b"wcs:k-123").decode()}
    assert (await hub_client.get("/sample/demo/people", headers=basic)).status == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"wcs:nope").decode()}
    assert (await hub_client.get("/sample/demo/people", headers=wrong)).status == 403
    # can_admin was not granted
    assert (await hub_client.get("/sample/demo/secret?apikey=k-123")).status == 403
    # An API key user needs a key
    status, payload = await admin(hub_client, "PUT", "/apiusers/nokey/", json={"keytype": "API"})
    assert status == 400
    assert "a key is required" in payload["err_desc"]
    status, payload = await admin(hub_client, "DELETE", "/apiusers/wcs/")
    assert status == 200
    assert (await hub_client.get("/sample/demo/people?apikey=k-123")).status == 403


async def test_upload_file(hub_client, make_instance):
    connector = await make_instance("sample", "demo")
    response = await hub_client.put(
        "/manage/api/instances/sample/demo/files/data.csv", data=b"a;b\n1;2\n", headers=AUTH
    )
    assert response.status == 200
    assert (await response.json())["data"] == {"name": "data.csv", "size": 8}
    assert (connector.files_dir / "data.csv").read_bytes() == b"a;b\n1;2\n"
    response = await hub_client.put("/manage/api/instances/sample/demo/files/..secret", data=b"x", headers=AUTH)
    assert response.status == 400


async def test_export_never_contains_secrets(hub_client):
    await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "key": "k-123"})
    await admin(hub_client, "POST", "/instances/", json={**SAMPLE, "access": [{"apiuser": "wcs"}]})
    status, payload = await admin(hub_client, "GET", "/export/")
    assert status == 200
    document = payload["data"]
    assert "s3cr3t-value" not in str(document) and "k-123" not in str(document)
    assert document["instances"][0]["config"]["password"] == {"$env": "PASSERELLE_SECRET_SAMPLE_DEMO_PASSWORD"}
    assert document["apiusers"][0]["key"] == {"$env": "PASSERELLE_SECRET_APIUSER_WCS_KEY"}
    assert document["instances"][0]["access"] == [{"apiuser": "wcs", "perm": "can_access"}]
    status, payload = await admin(hub_client, "GET", "/export/?secrets=omit")
    assert "password" not in payload["data"]["instances"][0]["config"]
    assert "key" not in payload["data"]["apiusers"][0]


async def test_import_is_all_or_nothing(hub_client):
    document = {
        "apiusers": [{"username": "all", "keytype": ""}],
        "instances": [
            {"type": "sample", "slug": "one", "title": "One", "access": [{"apiuser": "all"}]},
            {"type": "sample", "slug": "two", "title": "Two", "config": {"limit": "many"}},
        ],
    }
    status, payload = await admin(hub_client, "POST", "/import/", json=document)
    assert status == 400
    assert payload["err_desc"].startswith("instance sample/two (#2), field 'config.limit'")
    status, payload = await admin(hub_client, "GET", "/instances/")
    assert payload["data"] == []
    status, payload = await admin(hub_client, "GET", "/apiusers/")
    assert payload["data"] == []

    document["instances"][1]["config"] = {"limit": 3}
    status, payload = await admin(hub_client, "POST", "/import/?dry_run=1", json=document)
    assert status == 200 and payload["dry_run"] is True
    status, payload = await admin(hub_client, "GET", "/instances/")
    assert payload["data"] == []

    yaml_text = "instances:\n  - {type: sample, slug: one, title: One}\n"
    status, payload = await admin(
        hub_client, "POST", "/import/", data=yaml_text, headers={"Content-Type": "application/yaml"}
    )
    assert status == 200
    assert payload["data"]["created"] == ["instance sample/one"]
    status, payload = await admin(hub_client, "POST", "/import/", json=document)
    assert status == 200
    assert payload["data"] == {"created": ["apiuser all", "instance sample/two"], "updated": ["instance sample/one"]}
    assert (await hub_client.get("/sample/one/people")).status == 200


async def test_every_link_of_the_index_leads_somewhere(hub_client, make_instance):
    await make_instance("sample", "indexed")
    index = await (await hub_client.get("/manage/api/", headers=AUTH)).json()
    assert {"jobs", "periodic", "upstreams", "cache", "logs", "availability"} <= set(index["data"])
    other_methods = {"import": "POST", "cache": "DELETE"}  # routes without GET
    for name, link in index["data"].items():
        url = link.replace("{type}", "sample").replace("{slug}", "indexed").replace("{NameID}", "someone")
        response = await hub_client.request(other_methods.get(name, "GET"), url, headers=AUTH)
        # 400: the import asks for a body; anything but "not found" shows the route is there.
        assert response.status in (200, 400), (name, url, response.status)
