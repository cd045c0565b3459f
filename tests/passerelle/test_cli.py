"""The `passerelle` command, run as a person would: in a subprocess, with settings
from the environment, on SQLite (and PostgreSQL when `make test` started one)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from passerelle.storage import make_engine
from passerelle.testing import prepare_database
from tests.conftest import POSTGRESQL_URL

DOCUMENT = {
    "apiusers": [{"username": "wcs", "keytype": "API", "key": {"$env": "WCS_KEY"}}],
    "instances": [
        {
            "type": "csvdatasource",
            "slug": "musees",
            "title": "Musées",
            "config": {"source": "musees.csv", "id_column": "id", "text_column": "nom"},
            "access": [{"apiuser": "wcs", "perm": "can_access"}],
        }
    ],
}


async def _empty_postgresql() -> None:
    engine = make_engine(POSTGRESQL_URL)
    await prepare_database(engine)
    await engine.dispose()


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRESQL_URL else []))
def env(request, tmp_path):
    environment = {**os.environ, "PASSERELLE_DATA_DIR": str(tmp_path / "var"), "WCS_KEY": "key-from-env"}
    environment.pop("PASSERELLE_DATABASE_URL", None)
    if request.param == "postgresql":
        environment["PASSERELLE_DATABASE_URL"] = POSTGRESQL_URL
        # Several processes share PostgreSQL: the key of stored secrets must be set.
        environment["PASSERELLE_SECRET_KEY"] = "cli-test-secret-key"
        asyncio.run(_empty_postgresql())
    return environment


def passerelle(env, *args, input=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "passerelle.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        cwd=cwd,
    )


def write(path: Path, document) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def test_help_everywhere():
    for args in ([], ["serve"], ["import"], ["export"], ["instances"], ["instances", "delete"], ["check"]):
        result = passerelle(os.environ, *args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


def test_import_export_round_trip(env, tmp_path):
    source = write(tmp_path / "config.yaml", DOCUMENT)
    result = passerelle(env, "migrate")
    assert result.returncode == 0, result.stderr
    result = passerelle(env, "import", str(source))
    assert result.returncode == 0, result.stderr
    assert "created: apiuser wcs" in result.stdout
    assert "created: instance csvdatasource/musees" in result.stdout

    # Idempotent: the second import updates, creates nothing.
    result = passerelle(env, "import", str(source))
    assert "created" not in result.stdout
    assert "updated: instance csvdatasource/musees" in result.stdout

    result = passerelle(env, "instances", "list")
    assert result.stdout.strip() == "csvdatasource/musees\tMusées"

    exported = tmp_path / "export.json"
    result = passerelle(env, "export", str(exported))
    assert result.returncode == 0, result.stderr
    document = json.loads(exported.read_text())
    assert "key-from-env" not in exported.read_text()
    assert document["apiusers"][0]["key"] == {"$env": "PASSERELLE_SECRET_APIUSER_WCS_KEY"}
    assert document["instances"][0]["config"]["source"] == "musees.csv"
    assert document["instances"][0]["access"] == [{"apiuser": "wcs", "perm": "can_access"}]

    # The export imports back into a fresh database (the key comes from the environment).
    fresh = {**env, "PASSERELLE_DATA_DIR": str(tmp_path / "other"), "PASSERELLE_SECRET_APIUSER_WCS_KEY": "k2"}
    fresh.pop("PASSERELLE_DATABASE_URL", None)
    result = passerelle(fresh, "import", str(exported))
    assert result.returncode == 0, result.stderr

    result = passerelle(env, "export", "--format", "yaml", "--secrets", "omit")
    assert yaml.safe_load(result.stdout)["apiusers"][0].get("key") is None

    result = passerelle(env, "instances", "show", "csvdatasource/musees")
    assert json.loads(result.stdout)["title"] == "Musées"
    result = passerelle(env, "instances", "delete", "csvdatasource/musees", "--yes")
    assert result.returncode == 0
    result = passerelle(env, "instances", "show", "csvdatasource/musees")
    assert result.returncode == 1
    assert "no csvdatasource instance named 'musees'" in result.stderr


@pytest.mark.parametrize(
    ("change", "import_message", "check_message"),
    [
        (
            lambda d: d["instances"][0]["config"].pop("source"),
            "instance csvdatasource/musees (#2), field 'config.source': Field required",
            "instance csvdatasource/musees (#2), field 'config.source': Field required",
        ),
        (
            lambda d: d["instances"][0].update(type="nope"),
            "instance nope/musees (#2): unknown connector type 'nope'",
            "instance nope/musees (#2): unknown connector type 'nope'",
        ),
        (
            lambda d: d["apiusers"][0].update(keytype="TOKEN"),
            "API user 'wcs' (#1), field 'keytype'",
            "API user 'wcs' (#1), field 'keytype'",
        ),
        (
            lambda d: d["instances"][0]["access"][0].update(apiuser="ghost"),
            "field 'access.0.apiuser': unknown API user 'ghost'",
            "API user 'ghost' is not in the document",
        ),
        (
            lambda d: d["apiusers"][0].update(key={"$env": "UNSET_VARIABLE_X"}),
            "environment variable 'UNSET_VARIABLE_X' is not set",
            "environment variable 'UNSET_VARIABLE_X' is not set",
        ),
    ],
)
def test_invalid_file_changes_nothing_and_says_why(env, tmp_path, change, import_message, check_message):
    passerelle(env, "migrate")
    document = json.loads(json.dumps(DOCUMENT))
    change(document)
    # A valid instance before the broken one must not be imported either.
    document["instances"].insert(
        0, {"type": "csvdatasource", "slug": "ok", "title": "OK", "config": {"source": "a.csv"}}
    )
    path = write(tmp_path / "bad.yaml", document)
    imported = passerelle(env, "import", str(path))
    assert imported.returncode == 1
    assert import_message in imported.stderr, imported.stderr
    assert "nothing was imported" in imported.stderr
    assert "Traceback" not in imported.stderr
    checked = passerelle(env, "check", str(path))
    assert checked.returncode == 1
    assert check_message in checked.stderr, checked.stderr
    assert passerelle(env, "instances", "list").stdout == ""


def test_check_accepts_a_valid_file(env, tmp_path):
    path = write(tmp_path / "ok.yaml", DOCUMENT)
    result = passerelle(env, "check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("valid")


def test_unreadable_files_are_clear(env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("instances: [unclosed")
    result = passerelle(env, "import", str(bad))
    assert result.returncode == 1
    assert "is not valid YAML" in result.stderr


def test_serve_refuses_an_unmigrated_postgresql(env, tmp_path):
    if "PASSERELLE_DATABASE_URL" not in env:
        # SQLite migrates by itself unless told not to.
        env = {**env, "PASSERELLE_AUTO_MIGRATE": "false"}
    else:
        asyncio.run(_drop_schema())
    result = passerelle(env, "serve", "--port", "0")
    assert result.returncode == 1
    assert "run `passerelle migrate`" in result.stderr


async def _drop_schema() -> None:
    from sqlalchemy import text

    engine = make_engine(POSTGRESQL_URL)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def test_types_lists_builtin_and_plugin_types(env):
    result = passerelle(env, "types")
    assert "csvdatasource\t" in result.stdout


def test_settings_errors_are_one_line(env):
    result = passerelle({**env, "PASSERELLE_PORT": "not-a-port"}, "instances", "list")
    assert result.returncode == 1
    assert "invalid settings: port" in result.stderr


def test_plugin_commands_are_added_and_broken_ones_skipped(monkeypatch, capsys):
    import click

    from passerelle import cli

    @click.command()
    def hello() -> None:
        click.echo("hello")

    class EntryPoint:
        def __init__(self, name, value, loaded):
            self.name, self.value, self._loaded = name, value, loaded

        def load(self):
            if isinstance(self._loaded, Exception):
                raise self._loaded
            return self._loaded

    found = [
        EntryPoint("hello", "pkg:hello", hello),
        EntryPoint("broken", "pkg:broken", ImportError("no module named pkg")),
        EntryPoint("serve", "pkg:serve", hello),
        EntryPoint("odd", "pkg:odd", object()),
    ]
    monkeypatch.setattr(cli, "entry_points", lambda group: found if group == cli.COMMANDS_GROUP else [])
    group = click.Group(commands={"serve": cli.serve})
    cli.add_plugin_commands(group)
    assert set(group.commands) == {"serve", "hello"}
    assert group.commands["serve"] is cli.serve
    errors = capsys.readouterr().err
    assert "'broken' (pkg:broken) cannot be loaded" in errors
    assert "'serve' of pkg:serve is already a command" in errors
    assert "pkg:odd is not a click command" in errors
