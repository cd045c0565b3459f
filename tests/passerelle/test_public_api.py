"""The public surface for connector authors (``passerelle.__all__``) is importable and
documented in docs/writing-a-connector.md, and the guide's code quotes still match the
example plugin they are taken from."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import passerelle

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-connector.md"
PLUGIN = ROOT / "tests" / "example_plugin"

# A fenced block whose first line is "# <file>" quotes that file of the example plugin.
QUOTE = re.compile(
    r"^(?P<indent> *)```(?:python|toml)\n(?P=indent)# (?P<file>[\w/.-]+\.(?:py|toml))\n(?P<code>.*?)^(?P=indent)```",
    re.M | re.S,
)
CUT = re.compile(r"^ *# \.\.\.\n", re.M)


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_all_has_no_duplicate():
    assert len(set(passerelle.__all__)) == len(passerelle.__all__)


def test_all_lists_every_public_name():
    public = {
        name for name, value in vars(passerelle).items() if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(passerelle.__all__)


@pytest.mark.parametrize("name", passerelle.__all__)
def test_public_name_is_importable(name):
    namespace: dict[str, object] = {}
    exec(f"from passerelle import {name}", namespace)
    assert namespace[name] is getattr(passerelle, name)


@pytest.mark.parametrize("name", passerelle.__all__)
def test_public_name_has_a_heading_in_the_guide(name):
    assert re.search(rf"^### `{re.escape(name)}`$", guide(), re.M), f"docs/writing-a-connector.md: no '### `{name}`'"


def test_guide_documents_no_name_outside_the_public_surface():
    documented = re.findall(r"^## Reference: the public surface$.*", guide(), re.M | re.S)
    assert documented, "the guide has no reference section"
    headings = re.findall(r"^### `(\w+)`$", documented[0], re.M)
    assert sorted(headings) == sorted(passerelle.__all__)


def quotes() -> list[tuple[str, str]]:
    found = []
    for match in QUOTE.finditer(guide()):
        indent = len(match["indent"])
        code = "".join(line[indent:] + "\n" for line in match["code"].splitlines())
        found.append((match["file"], code))
    return found


def test_guide_quotes_the_example_plugin():
    files = {name for name, _ in quotes()}
    assert files == {"pyproject.toml", "passerelle_example/opening_hours.py", "tests/test_opening_hours.py"}
    assert len(quotes()) >= 15


@pytest.mark.parametrize(("name", "code"), quotes(), ids=[f"{n}:{i}" for i, (n, _) in enumerate(quotes())])
def test_quote_matches_the_example_plugin(name, code):
    source = (PLUGIN / name).read_text(encoding="utf-8")
    position = 0
    for part in CUT.split(code):
        found = source.find(part, position)
        assert found >= 0, f"this part of a quote of {name} is not in the file (or not in this order):\n{part}"
        position = found + len(part)


def test_guide_draws_the_error_tree_of_the_envelope_module():
    from passerelle import envelope

    tree = re.search(r"^    HubError .*?(?=\n\n)", envelope.__doc__ or "", re.M | re.S)
    assert tree is not None
    drawn = "\n".join(line[4:] for line in tree[0].splitlines())
    assert drawn in guide()
