"""Meta-tests: the documentation stays true to the code."""

from __future__ import annotations

from pathlib import Path

from passerelle.docgen import markdown_filename, render_index_markdown, render_type_markdown
from passerelle.plugins import discover_types, types_of_distribution
from passerelle.settings import Settings

ROOT = Path(__file__).parent.parent


def builtin_types():
    wanted = types_of_distribution("passerelle-hub")
    return {slug: cls for slug, cls in discover_types().items() if slug in wanted}


def test_every_builtin_type_has_an_up_to_date_reference_page():
    types = builtin_types()
    assert "csvdatasource" in types
    for cls in types.values():
        page = ROOT / "docs" / "reference" / markdown_filename(cls)
        assert page.exists(), f"{page} is missing: run `make docs`"
        assert page.read_text() == render_type_markdown(cls), f"{page} is stale: run `make docs`"
    assert (ROOT / "docs" / "reference" / "README.md").read_text() == render_index_markdown(types)


def test_every_builtin_type_has_a_guide_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for slug in builtin_types():
        assert (ROOT / "docs" / "connectors" / f"{slug}.md").exists()
        assert f"docs/connectors/{slug}.md" in readme


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"PASSERELLE_{name.upper()}" in readme, f"PASSERELLE_{name.upper()} is not documented in README.md"


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
