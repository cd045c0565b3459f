"""When the data is (re-)read: file changes, uploads, URL sources, failures, check_status."""

from __future__ import annotations

import asyncio
import os
import time
import types
from pathlib import Path

import pytest

from connectors.csvdatasource import connector as connector_module
from connectors.csvdatasource.connector import CsvDataSource
from passerelle import APIError, UpstreamError
from tests.connectors.csvdatasource.conftest import FACILITIES, get_json, ids

V1 = "id,nom\n1,Gap\n2,Romette\n"
V2 = "id,nom\n1,Gap\n2,Romette\n3,Pelleautier\n"


@pytest.fixture
def no_stat_throttle(monkeypatch):
    monkeypatch.setattr(CsvDataSource, "stat_interval", 0.0)


@pytest.fixture
def clock(monkeypatch):
    """Moves the connector's monotonic clock forward without touching the event loop's."""
    offset = {"seconds": 0.0}
    fake = types.SimpleNamespace(monotonic=lambda: time.monotonic() + offset["seconds"])
    monkeypatch.setattr(connector_module, "time", fake)
    return offset


async def texts(client, slug="test"):
    return [item["text"] for item in (await get_json(client, f"/csvdatasource/{slug}/data"))["data"]]


async def test_a_changed_file_is_read_again(hub_client, make_csv, tmp_path, no_stat_throttle):
    path = tmp_path / "communes.csv"
    path.write_text(V1)
    await make_csv(source=str(path))
    assert await texts(hub_client) == ["Gap", "Romette"]
    path.write_text(V2)
    assert await texts(hub_client) == ["Gap", "Pelleautier", "Romette"]


async def test_the_file_is_stat_at_most_once_per_interval(hub_client, make_csv, monkeypatch, clock):
    connector = await make_csv()
    await get_json(hub_client, "/csvdatasource/test/data")
    stats = []
    real_stamp = connector_module.file_stamp
    monkeypatch.setattr(connector_module, "file_stamp", lambda *args: stats.append(args) or real_stamp(*args))
    for _ in range(20):
        await connector.dataset()
    assert stats == []  # within a second of the first load: no stat at all
    clock["seconds"] += CsvDataSource.stat_interval
    await connector.dataset()
    await connector.dataset()
    assert len(stats) == 1


async def test_a_broken_reload_keeps_the_last_good_data(hub_client, make_csv, tmp_path, no_stat_throttle):
    path = tmp_path / "communes.csv"
    path.write_text(V1)
    connector = await make_csv(source=str(path))
    assert await texts(hub_client) == ["Gap", "Romette"]
    path.write_text("code,libelle\n1,Gap\n")  # the id column is gone
    assert await texts(hub_client) == ["Gap", "Romette"]
    with pytest.raises(APIError, match="column 'id' \\(from id_column\\) is not in the file"):
        await connector.check_status()
    path.write_text(V2)
    assert await texts(hub_client) == ["Gap", "Pelleautier", "Romette"]
    await connector.check_status()


async def test_a_missing_file(hub_client, make_csv, tmp_path):
    connector = await make_csv(source=str(tmp_path / "nowhere.csv"))
    payload = await get_json(hub_client, "/csvdatasource/test/data")
    assert payload["err"] == 1
    assert payload["err_desc"] == f"the source file {tmp_path / 'nowhere.csv'} does not exist"
    with pytest.raises(APIError, match="does not exist"):
        await connector.check_status()


async def test_relative_source_prefers_uploaded_files(hub_client, make_csv, tmp_path, monkeypatch, no_stat_throttle):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "communes.csv").write_text(V1)
    monkeypatch.chdir(workdir)
    connector = await make_csv(source="communes.csv")
    # Nothing uploaded yet: the file next to the hub is used.
    assert await texts(hub_client) == ["Gap", "Romette"]
    # An upload (what PUT /manage/api/instances/.../files/communes.csv does) takes over.
    connector.files_dir.mkdir(parents=True)
    (connector.files_dir / "communes.csv").write_text(V2)
    assert await texts(hub_client) == ["Gap", "Pelleautier", "Romette"]
    assert connector.resolve_path() == connector.files_dir / "communes.csv"


async def test_a_file_rewritten_with_the_same_size_is_noticed(hub_client, make_csv, tmp_path, no_stat_throttle):
    path = tmp_path / "communes.csv"
    path.write_text(V1)
    await make_csv(source=str(path))
    assert await texts(hub_client) == ["Gap", "Romette"]
    path.write_text(V1.replace("Romette", "Rombette").replace("Gap", "Ga"))  # same size
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert await texts(hub_client) == ["Ga", "Rombette"]


async def test_url_source(hub_client, make_csv, fake_upstream, clock):
    fake_upstream.reply("GET", "/communes.csv", body=V1, headers={"ETag": '"v1"'}, content_type="text/csv")
    fake_upstream.reply("GET", "/communes.csv", status=304)
    for _ in range(3):  # the first try and the outbound client's two retries
        fake_upstream.reply("GET", "/communes.csv", status=500)
    fake_upstream.reply("GET", "/communes.csv", body=V2, headers={"Last-Modified": "Sat, 28 Nov 2026 10:00:00 GMT"})
    fake_upstream.reply("GET", "/communes.csv", status=404)
    connector = await make_csv(source=f"{fake_upstream.url}/communes.csv", refresh_interval=600)
    assert await texts(hub_client) == ["Gap", "Romette"]
    assert len(fake_upstream.requests) == 1  # the start-up load and the first request share one download
    assert "If-None-Match" not in fake_upstream.requests[0].headers

    await connector.refresh()  # the periodic job: refresh_interval has not passed
    assert len(fake_upstream.requests) == 1

    clock["seconds"] += 600
    await connector.refresh()  # conditional GET, answered 304: the data is kept
    assert fake_upstream.requests[1].headers["If-None-Match"] == '"v1"'
    assert await texts(hub_client) == ["Gap", "Romette"]

    clock["seconds"] += 600
    await connector.refresh()  # HTTP 500 three times: logged, the last good data is still served
    assert len(fake_upstream.requests) == 5
    assert await texts(hub_client) == ["Gap", "Romette"]

    # After a failure the next try comes sooner (60 s), and a request triggers it in the background.
    clock["seconds"] += 60
    assert await texts(hub_client) == ["Gap", "Romette"]
    await asyncio.gather(*connector._tasks)
    assert len(fake_upstream.requests) == 6
    assert await texts(hub_client) == ["Gap", "Pelleautier", "Romette"]

    with pytest.raises(UpstreamError, match="the source URL answered HTTP 404"):
        await connector.check_status()
    assert fake_upstream.requests[6].headers["If-Modified-Since"] == "Sat, 28 Nov 2026 10:00:00 GMT"
    assert await texts(hub_client) == ["Gap", "Pelleautier", "Romette"]


async def test_url_source_down_from_the_start(hub_client, make_csv, fake_upstream):
    fake_upstream.reply("GET", "/communes.csv", status=503)
    await make_csv(source=f"{fake_upstream.url}/communes.csv")
    response = await hub_client.get("/csvdatasource/test/data")
    assert response.status == 502
    payload = await response.json()
    assert payload["err_class"] == "passerelle.envelope.UpstreamError"
    assert payload["err_desc"] == "the application answered HTTP 503"


async def test_url_source_xlsx_is_recognised_without_a_file_name(hub_client, make_csv, fake_upstream):
    from tests.connectors.csvdatasource.test_reading import make_xlsx

    fake_upstream.reply("GET", "/export", body=make_xlsx(), content_type="application/octet-stream")
    await make_csv(source=f"{fake_upstream.url}/export", sheet="Équipements")
    assert await texts(hub_client) == ["Médiathèque", "Piscine"]


async def test_closing_cancels_the_start_up_load(make_csv, tmp_path: Path):
    path = tmp_path / "big.csv"
    path.write_text(FACILITIES)
    connector = await make_csv(source=str(path))
    await connector.close()
    assert all(task.done() for task in connector._tasks)
    dataset = await connector.dataset()  # still usable: loads on demand
    assert ids(dataset.items) == ["3", "7", "2", "4", "5", "1", "6"]
