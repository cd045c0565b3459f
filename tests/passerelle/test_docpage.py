"""The instance page ``/<type>/<slug>/`` and the index ``/``, in HTML and JSON."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from yarl import URL

from passerelle import endpoint
from passerelle.connectors import Connector
from passerelle.description import endpoint_path, sorted_specs
from passerelle.hub import HUB
from passerelle.plugins import discover_types
from passerelle.storage.database import bump_config_version
from passerelle.storage.models import ConnectorInstance
from passerelle.testing import error_classes
from tests.passerelle.sample import Sample

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class HiddenSample(Sample):
    """The sample plus an endpoint left out of every documentation."""

    slug = "hidden-sample"
    title = "Sample with a hidden endpoint"

    @endpoint(description="Internal plumbing, undocumented.", show=False)
    async def internal(self) -> str:
        return "hidden but served"


@pytest.fixture
def hub_connector_types() -> dict[str, type[Connector]]:
    return {**discover_types(), "sample": Sample, "hidden-sample": HiddenSample}


@pytest.fixture
async def sample(make_instance):
    return await make_instance("sample", "demo", config={"greeting": "bonjour"}, title="Demo sample")


class Page(HTMLParser):
    """Collects links, the text of each section with an id, and nesting mistakes."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self.sections: dict[str, list[str]] = {}
        self.headings: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self._heading: list[str] | None = None
        self.feed(source)
        self.close()
        if self._stack:
            self.errors.append(f"unclosed {[t for t, _ in self._stack]}")

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.links.append(attributes)
        if tag in VOID:
            return
        section = attributes.get("id") if tag == "section" else None
        if section is not None:
            self.sections[section] = []
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        self._stack.append((tag, section))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self._stack or self._stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self._stack[-1:] or 'nothing'}")
            return
        self._stack.pop()
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)
        for _, section in self._stack:
            if section is not None:
                self.sections[section].append(data)

    def section(self, anchor: str) -> str:
        # Text pieces joined with spaces, as a browser would separate cells; no space before , or :
        return re.sub(r" ([,:])", r"\1", " ".join(" ".join(self.sections[anchor]).split()))

    def example_links(self) -> list[str]:
        return [link["href"] for link in self.links if "example-url" in link.get("class", "").split()]


async def get_page(client, url: str) -> tuple[str, Page]:
    response = await client.get(url, headers=HTML)
    assert response.status == 200
    assert response.content_type == "text/html"
    source = await response.text()
    page = Page(source)
    assert page.errors == []
    return source, page


async def test_html_page_documents_every_endpoint(hub_client, sample):
    source, page = await get_page(hub_client, "/sample/demo/")
    assert "<h1>Demo sample</h1>" in source
    assert "Exercises the framework." in source
    specs = sorted_specs(Sample)
    # Every shown variant of every endpoint (the Sample connector grows with the framework).
    assert len(specs) == sum(1 for variants in Sample.endpoints.values() for s in variants if s.show) >= 14
    for spec in specs:
        text = page.section(f"endpoint-{spec.method_name}")
        assert f"/sample/demo/{endpoint_path(spec)}" in text
        assert spec.description in text
        for method in spec.methods:
            assert method in text
        for param in [*spec.path_params, *spec.query_params]:
            assert param.query_name in text
            assert param.description in text


async def test_html_page_shows_parameters_permissions_and_modes(hub_client, sample):
    _, page = await get_page(hub_client, "/sample/demo/")
    hello = page.section("endpoint-hello")
    # name, in, required/optional, type with constraints, description, example, default
    assert "name query required string Who to greet Camille" in hello
    assert "times query optional integer ≥ 1; ≤ 5 How many times 2 1" in hello
    assert "loud query optional boolean Shout false false" in hello
    assert "permission: can_access" in hello
    typed = page.section("endpoint-typed_values")
    assert "day query required string (date) A date 2026-11-28" in typed
    assert 'one of "a", "b"' in typed
    assert "list of string" in typed
    assert "person_id path required integer Person number 3" in page.section("endpoint-person")
    assert "public: no access right needed" in page.section("endpoint-ping")
    assert "permission" not in page.section("endpoint-ping")
    assert "permission: can_admin" in page.section("endpoint-secret")
    assert "raw (no envelope)" in page.section("endpoint-raw")
    assert "raw (no envelope)" not in hello
    assert "Any other query parameter is accepted" in page.section("endpoint-anything")
    # Grouped by display category: the unnamed group first, then "Greetings".
    assert page.headings.index("General") < page.headings.index("Greetings")
    assert page.headings[-1].endswith("/sample/demo/hello/")


async def test_html_page_renders_body_schemas_as_trees(hub_client, sample):
    _, page = await get_page(hub_client, "/sample/demo/")
    create = page.section("endpoint-create")
    assert "JSON body object (no other properties)" in create
    assert "name string, required: Full name. (at least 1 character)" in create
    assert "age integer, required: Age in years. (≥ 0)" in create
    store = page.section("endpoint-store")
    assert "title string, required" in store
    assert "pages integer, optional (≥ 1)" in store
    assert '"minimum": 1' in store  # the schema itself, pretty-printed


async def test_every_example_link_answers_an_envelope(hub_client, sample):
    _, page = await get_page(hub_client, "/sample/demo/")
    links = page.example_links()
    get_specs = [s for s in sorted_specs(Sample) if "GET" in s.methods]
    assert len(links) == len(get_specs) >= 12
    known_errors = error_classes()
    answered = {}
    for link in links:
        url = URL(link)
        assert url.path.startswith("/sample/demo/")
        response = await hub_client.get(url.path_qs)
        assert response.content_type == "application/json", link
        payload = await response.json()
        name = url.path.split("/")[3]
        answered[name] = payload
        if name == "raw":
            assert response.status == 200
            assert payload == [{"display_name": "x"}]
        elif name in ("refuse", "crash"):
            # Failing on purpose: still an envelope of the error tree.
            assert payload["err"] == 1
            assert payload["err_class"] in known_errors
            assert response.status == (200 if name == "refuse" else 500)
        else:
            assert response.status == 200, (link, payload)
            assert payload["err"] == 0, (link, payload)
    assert answered["hello"]["data"] == "bonjour Camille bonjour Camille"
    assert answered["people"]["data"] in (["a", "b"], {"id": 3}, [30])
    assert answered["typed-values"]["data"]["day"] == "2026-11-28"
    assert answered["refuse"]["err_class"] == "passerelle.envelope.APIError"
    assert answered["crash"]["err_class"] == "passerelle.envelope.InternalError"


async def test_post_examples_are_shown_not_linked(hub_client, sample):
    source, page = await get_page(hub_client, "/sample/demo/")
    assert not any(link.endswith("/store/") or link.endswith("/create/") for link in page.example_links())
    assert "POST" in page.section("endpoint-store")
    assert '<code class="example-url">http' in source


async def test_json_page(hub_client, sample):
    response = await hub_client.get("/sample/demo/", headers=JSON)
    assert response.content_type == "application/json"
    payload = await response.json()
    assert payload["err"] == 0
    data = payload["data"]
    assert (data["type"], data["slug"], data["title"]) == ("sample", "demo", "Demo sample")
    assert data["url"].endswith("/sample/demo/")
    by_id = {e["id"]: e for e in data["endpoints"]}
    assert set(by_id) == {s.method_name for s in sorted_specs(Sample)}
    assert by_id["hello"]["example_url"].endswith("/sample/demo/hello/?name=Camille&times=2&loud=false")
    assert by_id["children"]["path"] == "people/{person_id}/children/"
    assert by_id["ping"]["public"] is True
    assert [f["name"] for f in by_id["create"]["body_tree"]["children"]] == ["name", "age"]
    assert by_id["create"]["body_schema"]["required"] == ["name", "age"]
    # ?format=json wins over a browser's Accept header.
    response = await hub_client.get("/sample/demo/?format=json", headers=HTML)
    assert (await response.json())["data"]["slug"] == "demo"


async def test_titles_and_descriptions_are_escaped(hub_client, make_instance):
    await make_instance(
        "sample", "xss", title="<script>alert(1)</script>", description='<img src=x onerror="alert(2)"> & co'
    )
    for url in ("/sample/xss/", "/"):
        source, page = await get_page(hub_client, url)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
        assert "<script" not in source
        assert "<img" not in source
        assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt; &amp; co" in source
        assert "<script>alert(1)</script>" in "".join(page.text)


async def test_page_is_self_contained(hub_client, sample):
    source, page = await get_page(hub_client, "/sample/demo/")
    assert "<link" not in source and "<script" not in source and "@import" not in source
    assert '<html lang="en">' in source
    assert '<nav class="toc" aria-label="Endpoints">' in source
    # Every in-page link points at an existing anchor.
    anchors = {link["href"][1:] for link in page.links if link["href"].startswith("#")}
    assert f"endpoint-{sorted_specs(Sample)[0].method_name}" in anchors
    assert anchors <= set(page.sections) | {"content"}
    assert any(link["href"].endswith("/openapi.json?instance=sample%2Fdemo") for link in page.links)


async def test_hidden_endpoints_are_not_documented_but_served(hub_client, make_instance):
    await make_instance("hidden-sample", "h")
    source, page = await get_page(hub_client, "/hidden-sample/h/")
    assert "internal" not in source and "Internal plumbing" not in source
    assert "endpoint-hello" in page.sections
    payload = await (await hub_client.get("/hidden-sample/h/", headers=JSON)).json()
    assert "internal" not in {e["name"] for e in payload["data"]["endpoints"]}
    response = await hub_client.get("/hidden-sample/h/internal")
    assert (await response.json()) == {"err": 0, "data": "hidden but served"}


async def add_broken_instance(hub_app) -> None:
    hub = hub_app[HUB]
    async with hub.sessionmaker() as session, session.begin():
        session.add(ConnectorInstance(type="gone", slug="old", title="Old connector", description="", config={}))
        await bump_config_version(session)
    await hub.registry.reload()
    async with hub.sessionmaker() as session:
        assert (await session.scalars(select(ConnectorInstance).where(ConnectorInstance.slug == "old"))).one()


async def test_index_page_groups_instances_and_lists_broken_ones(hub_app, hub_client, sample, make_instance):
    await make_instance("hidden-sample", "h", title="Hidden one")
    await add_broken_instance(hub_app)
    source, page = await get_page(hub_client, "/")
    assert "Tests" in page.headings  # the category of both types
    hrefs = {link["href"] for link in page.links}
    assert any(h.endswith("/sample/demo/") for h in hrefs)
    assert any(h.endswith("/hidden-sample/h/") for h in hrefs)
    assert "Demo sample" in source and "Hidden one" in source
    assert "Unavailable instances" in page.headings
    assert "gone/old: connector type 'gone' is not installed" in " ".join("".join(page.text).split())


async def test_index_json(hub_client, sample):
    response = await hub_client.get("/", headers=JSON)
    payload = await response.json()
    assert payload["err"] == 0
    assert [(i["type"], i["slug"], i["category"]) for i in payload["data"]] == [("sample", "demo", "Tests")]


async def test_empty_index_page(hub_client):
    source, page = await get_page(hub_client, "/")
    assert "No connector instance is configured yet." in source
    assert "Unavailable instances" not in page.headings
