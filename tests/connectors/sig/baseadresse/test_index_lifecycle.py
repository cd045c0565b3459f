"""The embedded index's life: built once, persisted, rebuilt only when a source changed, swapped
atomically in every process, downloaded conditionally, reported in the admin API."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from connectors.sig.baseadresse import BaseAdresse
from passerelle import UpstreamUnavailable
from passerelle.testing import ADMIN_TOKEN, check_conformance
from tests.connectors.sig.baseadresse.conftest import SAMPLE, get_json, wait_ready

LOCAL = {"backends": ["local"]}


async def test_built_once_then_only_when_a_source_changes(make_ban, tmp_path):
    source = tmp_path / "adresses.csv"
    shutil.copy(SAMPLE, source)
    connector = await make_ban(sources=[str(source)], **LOCAL)
    first = connector.local.version
    assert connector.local.status()["state"] == "ready"
    assert not await connector.local.refresh()  # nothing changed
    assert connector.local.version == first

    # One address fewer, and a new modification time: indexed again.
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    source.write_text("".join(lines[:-1]), encoding="utf-8")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert await connector.local.refresh()
    assert connector.local.version != first
    assert connector.local.status()["addresses"] == 346
    # Only the current version stays on disk.
    assert [p.name for p in connector.local.index_dir.glob("v-*")] == [connector.local.version]


async def test_every_process_swaps_to_the_new_version(make_ban, hub_settings, tmp_path):
    source = tmp_path / "adresses.csv"
    shutil.copy(SAMPLE, source)
    builder = await make_ban(sources=[str(source)], **LOCAL)
    # A second process serving the same instance: it loads what the first one built.
    reader = BaseAdresse(builder.instance, builder.config, hub_settings)
    assert await reader.local.load()
    old_index = reader.local.current()
    assert old_index is not None and reader.local.version == builder.local.version

    source.write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:100]), encoding="utf-8")
    assert await builder.local.refresh(force=True)
    # The reader keeps answering from the old index until the new one is loaded, then swaps.
    reader.local._checked_at = float("-inf")
    assert reader.local.current() is old_index
    async with asyncio.timeout(30):
        while reader.local.version != builder.local.version:
            await asyncio.sleep(0.02)
            reader.local._checked_at = float("-inf")
            reader.local.current()
    assert reader.local.status()["addresses"] == 99
    # The old index object still answers the queries that held it.
    assert old_index.search("rivoli", 1)
    await reader.close()


async def test_url_sources_are_downloaded_conditionally(make_ban, fake_upstream):
    body = SAMPLE.read_bytes()
    fake_upstream.reply("GET", "/adresses-sample.csv", body=body, headers={"ETag": '"v1"'}, content_type="text/csv")
    fake_upstream.reply("GET", "/adresses-sample.csv", status=304, body=b"")
    connector = await make_ban(sources=[f"{fake_upstream.url}/adresses-sample.csv"], **LOCAL)
    assert connector.local.status()["addresses"] == 347
    version = connector.local.version

    assert not await connector.local.refresh()  # 304: nothing to do
    assert connector.local.version == version
    second = fake_upstream.requests[-1]
    assert second.headers.get("If-None-Match") == '"v1"'


async def test_an_unreachable_url_keeps_the_index(make_ban, fake_upstream):
    fake_upstream.reply("GET", "/a.csv", body=SAMPLE.read_bytes(), content_type="text/csv")
    fake_upstream.reply("GET", "/a.csv", status=404, body=b"gone")
    connector = await make_ban(sources=[f"{fake_upstream.url}/a.csv"], **LOCAL)
    version = connector.local.version
    assert not await connector.local.refresh()
    status = connector.local.status()
    assert status["state"] == "ready" and connector.local.version == version
    assert "HTTP 404" in status["last_error"]


async def test_progress_and_state_in_the_admin_api(make_ban, hub_client):
    await make_ban(**LOCAL)
    response = await hub_client.get(
        "/manage/api/instances/base-adresse/test/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    details = (await response.json())["data"]["status"]["details"]
    assert details["backends"] == ["local"]
    index = details["index"]
    assert index["state"] == "ready"
    assert index["addresses"] == 347 and index["streets"] > 0
    assert index["sources"] == [str(SAMPLE)]
    assert index["built"] and index["progress"] is None and index["last_error"] is None


async def test_build_progress_is_reported_while_building(make_ban, tmp_path):
    # A file large enough for several progress lines (the sample repeated with new ids).
    rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    header, body = rows[0], rows[1:]
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for copy in range(120):
            for row in body:
                ident, rest = row.split(";", 1)
                out.write(f"{ident}_{copy};{rest}\n")
    connector = await make_ban(wait=False, sources=[str(big)], **LOCAL)
    seen = []
    async with asyncio.timeout(120):
        while connector.local.index is None:
            progress = connector.local.status()["progress"]
            if progress and progress["total"]:
                seen.append(progress["percent"])
            await asyncio.sleep(0.01)
    await wait_ready(connector)
    assert seen, "no progress was reported"
    assert all(0 <= p <= 100 for p in seen) and seen == sorted(seen)


async def test_the_periodic_job_respects_the_refresh_interval(make_ban, tmp_path):
    source = tmp_path / "adresses.csv"
    shutil.copy(SAMPLE, source)
    connector = await make_ban(sources=[str(source)], refresh_interval=3600, **LOCAL)
    version = connector.local.version
    source.write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:50]), encoding="utf-8")
    await connector.refresh_index()  # checked at start less than an hour ago: not yet
    assert connector.local.version == version
    connector._last_refresh -= 3600
    await connector.refresh_index()
    assert connector.local.version != version


async def test_conformance(make_ban, hub_client):
    connector = await make_ban(**LOCAL)
    assert await check_conformance(hub_client, connector) == []


async def test_check_status(make_ban, hub_client):
    connector = await make_ban(**LOCAL)
    await connector.check_status()
    payload = await get_json(hub_client, "/base-adresse/test/addresses", q="rivoli")
    assert payload["data"]


async def test_the_first_availability_check_waits_for_the_first_build(make_ban):
    connector = await make_ban(wait=False, **LOCAL)
    assert connector.local.index is None
    await connector.check_status()  # waits for the build, then says "up"
    assert connector.local.index is not None


async def test_a_failed_first_build_is_down_at_once(make_ban, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("nothing;we;know\n", encoding="utf-8")
    connector = await make_ban(wait=False, sources=[str(broken)], **LOCAL)
    with pytest.raises(UpstreamUnavailable, match="could not be built"):
        await asyncio.wait_for(connector.check_status(), 15)
