"""Connector types are found through the ``passerelle.connectors`` entry points, and
must follow a few rules to be registered (passerelle/plugins.py)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pytest
from passerelle_example.opening_hours import OpeningHours
from structlog.testing import capture_logs

from passerelle import Connector, InstanceInfo
from passerelle.app import create_app
from passerelle.hub import HUB
from passerelle.plugins import ENTRY_POINT_GROUP, PluginError, check_connector_type, discover_types, register_types
from passerelle.settings import Settings
from tests.passerelle.sample import Sample


class First(Connector):
    slug = "dup"
    title = "First"


class Second(Connector):
    slug = "dup"
    title = "Second"


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *declared: tuple[str, str]) -> None:
    """Make discover_types() see these entry points of the group, and only these."""
    fakes = [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in declared]

    def select(*, group: str) -> list[EntryPoint]:
        return fakes if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr("passerelle.plugins.entry_points", select)


# -- discovery -------------------------------------------------------------------


def test_example_plugin_is_found_through_its_entry_point():
    [declared] = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "opening-hours"]
    assert declared.value == "passerelle_example.opening_hours:OpeningHours"
    assert declared.dist is not None
    assert declared.dist.name == "passerelle-example-plugin"
    types = discover_types()
    assert types["opening-hours"] is OpeningHours
    assert types["opening-hours"].title == "Horaires d'ouverture"
    assert "csvdatasource" in types  # built-in types come the same way
    assert list(types) == sorted(types)


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        (["opening-hours"], ["opening-hours"]),
        (["opening-hours", "csvdatasource"], ["csvdatasource", "opening-hours"]),
        (["not-installed"], []),
        ([], []),
        (None, ["csvdatasource", "opening-hours"]),
    ],
)
def test_allow_list_filters_entry_points(allow, expected):
    types = discover_types(allow=allow)
    assert [slug for slug in types if slug in ("csvdatasource", "opening-hours")] == expected
    if allow is not None:
        assert list(types) == expected


async def test_the_load_plugins_setting_is_the_allow_list(tmp_path):
    settings = Settings(data_dir=tmp_path, load_plugins="opening-hours")
    assert settings.load_plugins == ["opening-hours"]
    app = create_app(settings)
    try:
        assert app[HUB].types == {"opening-hours": OpeningHours}
    finally:
        await app[HUB].engine.dispose()


def test_a_broken_entry_point_is_logged_and_skipped(monkeypatch):
    fake_entry_points(
        monkeypatch,
        ("broken", "passerelle_no_such_module:Broken"),
        ("sample", "tests.passerelle.sample:Sample"),
        ("missing", "tests.passerelle.sample:NoSuchClass"),
    )
    with capture_logs() as logs:
        types = discover_types()
    assert types == {"sample": Sample}
    assert logs == [
        {
            "event": "connector type failed to load",
            "entry_point": "broken",
            "error": "ModuleNotFoundError(\"No module named 'passerelle_no_such_module'\")",
            "log_level": "error",
        },
        {
            "event": "connector type failed to load",
            "entry_point": "missing",
            "error": "AttributeError(\"module 'tests.passerelle.sample' has no attribute 'NoSuchClass'\")",
            "log_level": "error",
        },
    ]


def test_allow_list_skips_even_a_broken_entry_point(monkeypatch):
    fake_entry_points(
        monkeypatch, ("broken", "passerelle_no_such_module:Broken"), ("sample", "tests.passerelle.sample:Sample")
    )
    with capture_logs() as logs:
        assert discover_types(allow=["sample"]) == {"sample": Sample}
    assert logs == []  # not even imported


def test_entry_point_name_must_be_the_slug(monkeypatch):
    fake_entry_points(
        monkeypatch,
        ("horaires", "passerelle_example.opening_hours:OpeningHours"),
        ("sample", "tests.passerelle.sample:Sample"),
    )
    with capture_logs() as logs:
        assert discover_types() == {"sample": Sample}
    assert logs == [
        {
            "event": "connector type failed to load",
            "entry_point": "horaires",
            "error": "PluginError(\"entry point 'horaires' (passerelle_example.opening_hours:OpeningHours): "
            "the entry point name must be the type slug 'opening-hours'\")",
            "log_level": "error",
        }
    ]


def test_allow_list_warns_about_unknown_slugs(monkeypatch):
    fake_entry_points(monkeypatch, ("sample", "tests.passerelle.sample:Sample"))
    with capture_logs() as logs:
        assert discover_types(allow=["sampel"]) == {}
    assert logs == [{"event": "no installed connector type has this slug", "allowed": "sampel", "log_level": "warning"}]


def test_two_entry_points_with_one_slug_are_refused(monkeypatch):
    fake_entry_points(
        monkeypatch, ("dup", "tests.passerelle.test_plugins:First"), ("dup", "tests.passerelle.test_plugins:Second")
    )
    with pytest.raises(PluginError, match="two connector types claim the slug 'dup'"):
        discover_types()


# -- the rules of registration ---------------------------------------------------------


def test_register_types_indexes_by_slug():
    assert register_types([Sample, OpeningHours]) == {"sample": Sample, "opening-hours": OpeningHours}
    assert register_types([Sample, Sample]) == {"sample": Sample}  # the same class twice is harmless


def test_register_types_refuses_two_types_with_one_slug():
    with pytest.raises(PluginError) as caught:
        register_types([First, Second])
    assert str(caught.value) == (
        "two connector types claim the slug 'dup': "
        "tests.passerelle.test_plugins.First and tests.passerelle.test_plugins.Second"
    )


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (dict, "code: <class 'dict'> is not a subclass of passerelle.connectors.Connector"),
        (
            Sample(InstanceInfo(1, "sample", "demo", "Demo"), Sample.Config(), None),  # type: ignore[arg-type]
            "code: <Sample sample/demo> is not a subclass of passerelle.connectors.Connector",
        ),
        ("tests.passerelle.sample:Sample", "code: 'tests.passerelle.sample:Sample' is not a subclass of"),
    ],
)
def test_register_types_refuses_what_is_not_a_connector_class(candidate, message):
    with pytest.raises(PluginError) as caught:
        register_types([candidate])
    assert str(caught.value).startswith(message)


def throwaway(**attributes: object) -> type[Connector]:
    return type("Throwaway", (Connector,), attributes)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"title": "No slug"}, "code: connector type Throwaway must set 'slug'"),
        ({"slug": "", "title": "Empty slug"}, "code: connector type Throwaway must set 'slug'"),
        ({"slug": "no-title"}, "code: connector type Throwaway must set 'title'"),
        ({"slug": "blank-title", "title": ""}, "code: connector type Throwaway must set 'title'"),
        ({"slug": 3, "title": "Not text"}, "code: connector type Throwaway must set 'slug'"),
    ],
)
def test_register_types_refuses_a_missing_slug_or_title(attributes, message):
    with pytest.raises(PluginError) as caught:
        register_types([throwaway(**attributes)])
    assert str(caught.value) == message


@pytest.mark.parametrize("slug", ["Opening-Hours", "opening hours", "opening/hours", "opening.hours", "horaires?"])
def test_register_types_refuses_a_bad_slug(slug):
    with pytest.raises(PluginError) as caught:
        register_types([throwaway(slug=slug, title="Bad")])
    assert str(caught.value) == f"code: slug {slug!r} must be lower-case ASCII letters, digits, '-' or '_'"


@pytest.mark.parametrize("slug", ["horaires-été", "piscine²"])
def test_register_types_refuses_a_non_ascii_slug(slug):
    with pytest.raises(PluginError):
        register_types([throwaway(slug=slug, title="Accents")])


@pytest.mark.parametrize("slug", ["opening-hours", "csv_data_source", "ban2", "x"])
def test_good_slugs_are_accepted(slug):
    cls = throwaway(slug=slug, title="Good")
    assert check_connector_type(cls, "code") is cls


def test_a_linking_type_without_verify_ownership_is_refused():
    from pydantic import BaseModel

    from passerelle.linking import LinkingConnector

    class Proof(BaseModel):
        number: str

    class Unfinished(LinkingConnector):
        slug = "unfinished"
        title = "Unfinished"
        LinkProof = Proof

    with pytest.raises(PluginError, match="does not implement verify_ownership"):
        register_types([Unfinished])
