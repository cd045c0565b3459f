"""Markdown reference pages generated from connector declarations."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from passerelle import Connector, endpoint
from passerelle.description import endpoint_path, sorted_specs
from passerelle.docgen import markdown_filename, render_index_markdown, render_type_markdown, text
from passerelle.plugins import discover_types
from tests.passerelle.sample import Sample
from tests.passerelle.test_docpage import HiddenSample


def rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The cells of the table rows starting with ``first_cell`` (escaped pipes kept)."""
    found = []
    for line in markdown.splitlines():
        if line.startswith(f"| {first_cell} |"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            found.append([c.strip() for c in cells])
    return found


def test_sample_page_heading_and_configuration():
    markdown = render_type_markdown(Sample)
    assert markdown.startswith("# Sample\n")
    assert "Type `sample` · category: Tests" in markdown
    assert "Exercises the framework." in markdown
    # Field | Type | Required | Default | Secret | Description
    assert rows(markdown, "`greeting`") == [
        ["`greeting`", "string", "optional", '`"hello"`', "", "Word put before names."]
    ]
    assert rows(markdown, "`password`") == [
        [
            "`password`",
            "string (password) or null",
            "optional",
            "`null`",
            "**secret**",
            "A secret the sample never shows.",
        ]
    ]
    assert rows(markdown, "`limit`") == [["`limit`", "integer", "optional", "`10`", "", "Largest page size. (≥ 1)"]]
    for field in Sample.Config.model_fields:
        assert f"| `{field}` |" in markdown


def test_sample_page_permissions_and_jobs():
    markdown = render_type_markdown(Sample)
    assert "- `can_admin`: needed by `secret`" in markdown
    assert "- **public** (no access right needed): `ping`" in markdown
    can_access = next(line for line in markdown.splitlines() if line.startswith("- `can_access`"))
    assert "`hello`" in can_access and "`secret`" not in can_access and "`ping`" not in can_access
    assert rows(markdown, "`refresh`") == [["`refresh`", "1 h", "Refreshes nothing."]]


def test_sample_page_documents_every_endpoint():
    markdown = render_type_markdown(Sample)
    for spec in sorted_specs(Sample):
        path = f"/sample/<slug>/{endpoint_path(spec)}"
        assert f"#### {' '.join(spec.methods)} `{path}`" in markdown
        assert spec.description in markdown
        for param in [*spec.path_params, *spec.query_params]:
            assert f"| `{param.query_name}` |" in markdown
    # Summary table: Methods | Path | Permission | Description
    assert rows(markdown, "GET")[0] == ["GET", "`/sample/<slug>/anything/`", "`can_access`", "Takes any parameter."]
    assert ["POST, PUT", "`/sample/<slug>/store/`", "`can_access`", "Stores a document (JSON Schema body)."] in rows(
        markdown, "POST, PUT"
    )
    assert "| GET | `/sample/<slug>/ping/` | **public** | Anyone may call this. |" in markdown
    # Categories: the unnamed one first, then "Greetings" holding hello.
    assert (
        markdown.index("### General")
        < markdown.index("### Greetings")
        < markdown.index("#### GET `/sample/<slug>/hello/`")
    )


def test_sample_page_parameters_bodies_and_examples():
    markdown = render_type_markdown(Sample)
    # Name | In | Required | Type | Description | Example | Default
    assert rows(markdown, "`times`") == [
        ["`times`", "query", "optional", "integer (≥ 1; ≤ 5)", "How many times", "`2`", "`1`"]
    ]
    assert rows(markdown, "`loud`") == [["`loud`", "query", "optional", "boolean", "Shout", "`false`", "`false`"]]
    assert ["`person_id`", "path", "required", "integer", "Person number", "`3`", ""] in rows(markdown, "`person_id`")
    assert "Example: `GET /sample/<slug>/hello/?name=Camille&times=2&loud=false`" in markdown
    assert "Example: `GET /sample/<slug>/people/3/children/`" in markdown
    assert "- `name` (string, required): Full name. (at least 1 character)" in markdown
    assert "- `age` (integer, required): Age in years. (≥ 0)" in markdown
    assert "- `pages` (integer, optional) (≥ 1)" in markdown
    assert '"required": [\n    "name",\n    "age"\n  ]' in markdown  # the schema, as a JSON block
    assert "- Raw answer (no envelope)" in markdown
    assert "- Accepts any other query parameter" in markdown


def test_hidden_endpoints_are_left_out():
    markdown = render_type_markdown(HiddenSample)
    assert "internal" not in markdown and "Internal plumbing" not in markdown
    assert "#### GET `/hidden-sample/<slug>/hello/`" in markdown


class Awkward(Connector):
    slug = "awkward"
    title = "Awkward <b>names</b>"
    category = "Edge | cases"
    description = "Uses *stars*, `ticks` and <script>alert(1)</script>."

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str = Field(description="Where | what\nsecond line")
        token: SecretStr = Field(description="API token.")

    @endpoint(description="Nothing to see.", perm="can_read")
    async def nothing(self) -> None:
        return None


def test_text_is_escaped_and_tables_stay_tables():
    markdown = render_type_markdown(Awkward)
    assert markdown.startswith("# Awkward &lt;b&gt;names&lt;/b&gt;\n")
    assert "Uses \\*stars\\*, \\`ticks\\` and &lt;script&gt;alert(1)&lt;/script&gt;." in markdown
    assert "<script>" not in markdown
    url_row = rows(markdown, "`url`")
    assert url_row == [["`url`", "string", "required", "", "", "Where \\| what<br>second line"]]
    assert rows(markdown, "`token`")[0][4] == "**secret**"
    assert "- `can_read`: needed by `nothing`" in markdown


def test_index_page():
    types = {**discover_types(), "sample": Sample, "awkward": Awkward}
    markdown = render_index_markdown(types)
    assert markdown.startswith("# Connector types\n")
    assert f"{len(types)} connector types, by category." in markdown
    assert markdown.index("## Edge | cases") < markdown.index("## Tests")
    count = sum(1 for variants in Sample.endpoints.values() for spec in variants if spec.show)
    assert f"| [Sample](sample.md) | `sample` | {count} | Exercises the framework. |" in markdown
    assert "[Awkward &lt;b&gt;names&lt;/b&gt;](awkward.md)" in markdown
    assert markdown_filename(Sample) == "sample.md"
    assert render_index_markdown([Sample]) == render_index_markdown({"sample": Sample})
    assert "No connector type is installed." in render_index_markdown([])


@pytest.mark.parametrize("slug", sorted(discover_types()))
def test_every_installed_type_has_a_page(slug):
    cls = discover_types()[slug]
    markdown = render_type_markdown(cls)
    assert markdown.startswith(f"# {text(cls.title)}\n")
    for field in cls.Config.model_fields:
        assert f"| `{field}` |" in markdown
    for spec in sorted_specs(cls):
        assert f"`/{slug}/<slug>/{endpoint_path(spec)}`" in markdown
