"""`passerelle citizen show|erase NAMEID`, run as a person would (in a subprocess), on
SQLite and on PostgreSQL when `make test` started one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from passerelle.connectors import InstanceInfo
from passerelle.links import Links
from passerelle.settings import Settings
from passerelle.storage import ConnectorInstance, make_engine, make_sessionmaker
from passerelle.storage.models import Link, LinkAudit
from passerelle.testing import prepare_database
from tests.conftest import POSTGRESQL_URL

ALICE = "a1a1a1a1-0000-4000-8000-000000000001"
BOB = "b0b0b0b0-0000-4000-8000-000000000002"


def database_url(env) -> str:
    given = {"database_url": env["PASSERELLE_DATABASE_URL"]} if "PASSERELLE_DATABASE_URL" in env else {}
    return Settings(data_dir=Path(env["PASSERELLE_DATA_DIR"]), **given).resolved_database_url


async def _seed(url: str) -> None:
    engine = make_engine(url)
    await prepare_database(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        session.add_all(
            [
                ConnectorInstance(id=1, type="family", slug="ville", title="Ville", config={}),
                ConnectorInstance(id=2, type="family", slug="agglo", title="Agglo", config={}),
            ]
        )
    ville = Links(sessionmaker, InstanceInfo(1, "family", "ville", "Ville"))
    agglo = Links(sessionmaker, InstanceInfo(2, "family", "agglo", "Agglo"))
    await ville.link(ALICE, "F001", extra={"text": "Famille Martin"}, actor="apiuser:wcs")
    await agglo.link(ALICE, "F003", actor="apiuser:wcs")
    await ville.link(BOB, "F002", actor="apiuser:wcs")
    await engine.dispose()


async def _tables(url: str) -> tuple[list, list]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        links = [(r.name_id, r.external_id) for r in (await session.scalars(select(Link).order_by(Link.id))).all()]
        audit = [
            (r.name_id, r.action, r.actor, r.detail)
            for r in (await session.scalars(select(LinkAudit).order_by(LinkAudit.id))).all()
        ]
    await engine.dispose()
    return links, audit


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRESQL_URL else []))
def env(request, tmp_path):
    environment = {**os.environ, "PASSERELLE_DATA_DIR": str(tmp_path / "var")}
    environment.pop("PASSERELLE_DATABASE_URL", None)
    if request.param == "postgresql":
        environment["PASSERELLE_DATABASE_URL"] = POSTGRESQL_URL
    (tmp_path / "var").mkdir()
    asyncio.run(_seed(database_url(environment)))
    return environment


def passerelle(env, *args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "passerelle.cli", *args], env=env, capture_output=True, text=True, input=input
    )


def test_help():
    for args in (["citizen"], ["citizen", "show"], ["citizen", "erase"]):
        result = passerelle(os.environ, *args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


def test_show(env):
    result = passerelle(env, "citizen", "show", ALICE)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["name_id"] == ALICE
    assert [(link["instance"], link["external_id"]) for link in shown["links"]] == [
        ("family/agglo", "F003"),
        ("family/ville", "F001"),
    ]
    assert [(entry["instance"], entry["action"]) for entry in shown["link_audit"]] == [
        ("family/ville", "link"),
        ("family/agglo", "link"),
    ]
    assert BOB not in result.stdout and "F002" not in result.stdout


def test_erase_asks_then_removes_only_that_citizen(env):
    url = database_url(env)
    result = passerelle(env, "citizen", "erase", ALICE, input="n\n")
    assert result.returncode == 1
    assert "2 links, 2 link_audit" in result.stdout
    assert len(asyncio.run(_tables(url))[0]) == 3

    result = passerelle(env, "citizen", "erase", ALICE, input="y\n")
    assert result.returncode == 0, result.stderr
    assert "erased (links: 2, link_audit: 2, resource logs: 0, jobs: 0)" in result.stdout

    links, audit = asyncio.run(_tables(url))
    assert links == [(BOB, "F002")]
    assert audit == [
        (BOB, "link", "apiuser:wcs", {"external_id": "F002"}),
        ("", "erase", "cli", {"removed": {"links": 2, "link_audit": 2, "resource logs": 0, "jobs": 0}, "failed": []}),
    ]
    assert ALICE not in str(audit)

    result = passerelle(env, "citizen", "show", ALICE)
    assert json.loads(result.stdout) == {
        "name_id": ALICE,
        "links": [],
        "link_audit": [],
        "resource logs": 0,
        "jobs": [],
    }


def test_erase_yes_does_not_ask(env):
    result = passerelle(env, "citizen", "erase", BOB, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "erased (links: 1, link_audit: 1, resource logs: 0, jobs: 0)"
    links, _ = asyncio.run(_tables(database_url(env)))
    assert [name_id for name_id, _ in links] == [ALICE, ALICE]


def test_an_empty_name_id_is_refused(env):
    for args in (["show", " "], ["erase", " ", "--yes"]):
        result = passerelle(env, "citizen", *args)
        assert result.returncode == 1
        assert "NAMEID is empty" in result.stderr
    assert len(asyncio.run(_tables(database_url(env)))[0]) == 3
