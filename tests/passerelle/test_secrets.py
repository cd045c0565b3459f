"""Secrets at rest: encrypted in the database, decrypted only to build connectors and
callers; plaintext rows of earlier versions still load; a wrong key is a clear error."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text, update

from passerelle.app import create_app
from passerelle.hub import HUB
from passerelle.secrets import (
    KEY_FILE,
    PREFIX,
    SecretBox,
    SecretDecryptError,
    SecretKeyError,
    is_encrypted,
    key_from_file,
    rekey,
)
from passerelle.settings import Settings
from passerelle.storage.database import bump_config_version
from passerelle.storage.models import ApiUser, ConnectorInstance
from passerelle.testing import ADMIN_TOKEN, SECRET_KEY
from tests.passerelle.sample import Sample

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONFIG_SECRET = "s3cr3t-config-Zq81"
API_KEY = "apikey-Wm52-very-secret"


async def admin(client, method, path, **kwargs):
    response = await client.request(method, f"/manage/api{path}", headers=AUTH, **kwargs)
    return response.status, await response.json()


# -- the box ------------------------------------------------------------------------------


def test_round_trip():
    box = SecretBox("a key")
    sealed = box.encrypt("pâté 🔑")
    assert sealed.startswith(f"{PREFIX}{box.key_id}:")
    assert "pâté" not in sealed
    assert box.decrypt(sealed) == "pâté 🔑"
    # A fresh nonce each time; the same key derives the same box.
    assert box.encrypt("x") != box.encrypt("x")
    assert SecretBox("a key").decrypt(sealed) == "pâté 🔑"
    assert SecretBox("a key").key_id == box.key_id != SecretBox("another key").key_id
    assert "a key" not in repr(box)


def test_plaintext_of_earlier_versions_passes():
    box = SecretBox("k")
    assert box.decrypt("written in clear") == "written in clear"
    assert box.decrypt("") == ""
    assert not is_encrypted("written in clear") and is_encrypted(box.encrypt("x"))


def test_wrong_key_and_damaged_values_are_clear_errors():
    sealed = SecretBox("right").encrypt("the plaintext")
    with pytest.raises(SecretDecryptError) as error:
        SecretBox("wrong").decrypt(sealed)
    message = str(error.value)
    assert "another key" in message and "PASSERELLE_SECRET_KEY" in message
    assert "the plaintext" not in message and sealed.rsplit(":", 1)[1] not in message

    box = SecretBox("right")
    head, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-1] ^= 1
    tampered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for damaged in (tampered, head + ":", head + ":!!!", f"{PREFIX}{box.key_id}", sealed[:-8]):
        with pytest.raises(SecretDecryptError, match="damaged"):
            box.decrypt(damaged)


def test_reseal_keeps_an_unchanged_secret():
    box = SecretBox("k")
    stored = box.encrypt("same")
    assert box.reseal("same", stored) == stored
    assert box.reseal("other", stored) != stored
    assert box.reseal("same", "same") != "same"  # plaintext of an earlier version: encrypted now
    assert box.reseal("same", SecretBox("old").encrypt("same")) != stored


def test_configs_are_sealed_and_opened_by_field():
    box = SecretBox("k")
    sealed = box.seal_config(Sample.Config, {"greeting": "hi", "password": CONFIG_SECRET})
    assert sealed["greeting"] == "hi" and is_encrypted(sealed["password"])
    assert box.open_config(Sample.Config, sealed) == {"greeting": "hi", "password": CONFIG_SECRET}
    with pytest.raises(SecretDecryptError, match="secret field 'password'") as error:
        SecretBox("other").open_config(Sample.Config, sealed)
    assert sealed["password"] not in str(error.value)


# -- where the key comes from -------------------------------------------------------------


def test_the_setting_is_the_key(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="from-settings")
    assert SecretBox.from_settings(settings).key_id == SecretBox("from-settings").key_id
    assert not (tmp_path / KEY_FILE).exists()


def test_sqlite_without_key_generates_a_key_file_once(tmp_path, caplog):
    settings = Settings(data_dir=tmp_path / "var")
    with caplog.at_level(logging.WARNING, logger="passerelle.secrets"):
        first = SecretBox.from_settings(settings)
    path = tmp_path / "var" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "generated a secret key" in caplog.text and "PASSERELLE_SECRET_KEY" in caplog.text
    assert path.read_text().strip() not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="passerelle.secrets"):
        again = SecretBox.from_settings(settings)
    assert again.key_id == first.key_id
    assert caplog.text == ""
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]  # no temporary file left


def test_key_file_created_once_by_concurrent_processes(tmp_path):
    path = tmp_path / KEY_FILE
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(key_from_file(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0] == path.read_text().strip()


def test_key_file_problems_are_clear(tmp_path, caplog):
    path = tmp_path / KEY_FILE
    path.write_text("")
    with pytest.raises(SecretKeyError, match="is empty: restore it from a backup"):
        key_from_file(path)
    path.write_text("my-key\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="passerelle.secrets"):
        assert key_from_file(path) == "my-key"
    assert "readable by other users" in caplog.text


def test_other_databases_refuse_to_start_without_a_key(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql://u:p@db/hub")
    with pytest.raises(SecretKeyError, match="PASSERELLE_SECRET_KEY is not set") as error:
        SecretBox.from_settings(settings)
    assert "passerelle secrets generate-key" in str(error.value)
    with pytest.raises(SecretKeyError):
        create_app(settings, types={})
    assert not (tmp_path / KEY_FILE).exists()


# -- in the database ------------------------------------------------------------------------


async def raw_rows(engine) -> str:
    """What the database holds, read with SQL (no ORM, no decryption)."""
    async with engine.connect() as connection:
        configs = (await connection.execute(text("SELECT config FROM connector_instance"))).all()
        keys = (await connection.execute(text("SELECT key, previous_key FROM api_user"))).all()
    return repr(configs) + repr(keys)


async def store_secrets(client) -> None:
    status, payload = await admin(client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "key": API_KEY})
    assert status == 201, payload
    instance = {
        "type": "sample",
        "slug": "demo",
        "title": "Demo",
        "config": {"password": CONFIG_SECRET},
        "access": [{"apiuser": "wcs", "perm": "can_access"}],
    }
    status, payload = await admin(client, "POST", "/instances/", json=instance)
    assert status == 201, payload


async def test_rows_hold_no_plaintext_secret(hub_app, hub_client, hub_engine):
    await store_secrets(hub_client)
    status, _ = await admin(hub_client, "POST", "/apiusers/wcs/rotate/", json={"key": API_KEY + "-2", "grace": 600})
    assert status == 200
    raw = await raw_rows(hub_engine)
    assert CONFIG_SECRET not in raw and API_KEY not in raw
    assert raw.count(PREFIX) == 3  # the config secret, the key and the previous key
    # The connector and the access check see the secrets in clear.
    hub = hub_app[HUB]
    assert hub.registry.lookup("sample", "demo").config.password.get_secret_value() == CONFIG_SECRET
    for key in (API_KEY, API_KEY + "-2"):
        assert (await hub_client.get(f"/sample/demo/people?apikey={key}")).status == 200
    assert (await hub_client.get("/sample/demo/people?apikey=wrong")).status == 403


async def test_an_unchanged_secret_is_not_rewritten(hub_app, hub_client, hub_engine):
    await store_secrets(hub_client)
    before = await raw_rows(hub_engine)
    connector = hub_app[HUB].registry.lookup("sample", "demo")
    document = {
        "apiusers": [{"username": "wcs", "keytype": "API", "key": API_KEY}],
        "instances": [{"type": "sample", "slug": "demo", "title": "Demo", "config": {"password": CONFIG_SECRET}}],
    }
    status, payload = await admin(hub_client, "POST", "/import/", json=document)
    assert status == 200, payload
    assert await raw_rows(hub_engine) == before
    # Not rebuilt either: nothing changed.
    assert hub_app[HUB].registry.lookup("sample", "demo") is connector


async def test_patch_and_put_keep_the_stored_secret(hub_app, hub_client, hub_engine):
    await store_secrets(hub_client)
    status, payload = await admin(hub_client, "PATCH", "/instances/sample/demo/", json={"config": {"limit": 3}})
    assert status == 200, payload
    status, payload = await admin(hub_client, "PUT", "/instances/sample/demo/", json={"title": "T", "config": {}})
    assert status == 200, payload
    assert payload["data"]["secrets_set"] == ["password"]
    assert hub_app[HUB].registry.lookup("sample", "demo").config.password.get_secret_value() == CONFIG_SECRET
    # A ciphertext can keep the stored secret, never set another one.
    stored = SecretBox(SECRET_KEY).encrypt("smuggled")
    status, payload = await admin(hub_client, "PATCH", "/instances/sample/demo/", json={"config": {"password": stored}})
    assert status == 400
    assert "an encrypted value can only keep the stored one" in payload["err_desc"]
    assert stored not in str(payload)


async def test_plaintext_rows_of_earlier_versions_load_and_get_encrypted(hub_app, hub_client, hub_engine):
    await store_secrets(hub_client)
    hub = hub_app[HUB]
    async with hub.sessionmaker() as session, session.begin():
        await session.execute(update(ConnectorInstance).values(config={"password": CONFIG_SECRET}))
        await session.execute(update(ApiUser).values(key=API_KEY))
        await bump_config_version(session)
    await hub.registry.reload()
    assert hub.registry.lookup("sample", "demo").config.password.get_secret_value() == CONFIG_SECRET
    assert (await hub_client.get(f"/sample/demo/people?apikey={API_KEY}")).status == 200
    assert CONFIG_SECRET in await raw_rows(hub_engine)

    # The next write encrypts them.
    status, _ = await admin(hub_client, "PATCH", "/instances/sample/demo/", json={"title": "Renamed"})
    assert status == 200
    status, _ = await admin(hub_client, "PUT", "/apiusers/wcs/", json={"keytype": "API", "key": API_KEY})
    assert status == 200
    raw = await raw_rows(hub_engine)
    assert CONFIG_SECRET not in raw and API_KEY not in raw
    assert (await hub_client.get(f"/sample/demo/people?apikey={API_KEY}")).status == 200


async def test_a_wrong_key_is_a_clear_error_naming_the_instance(hub_settings, hub_client, hub_engine, capsys, tmp_path):
    await store_secrets(hub_client)
    raw = await raw_rows(hub_engine)
    # Another process started with another key, on the same database.
    other_settings = hub_settings.model_copy(update={"secret_key": SecretStr("not-the-right-key")})
    other = create_app(other_settings, types={"sample": Sample}, engine=hub_engine)
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(other, host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get(f"/sample/demo/people?apikey={API_KEY}")
        assert response.status == 503
        answer = await response.text()
        assert "sample/demo is not available" in answer and "Traceback" not in answer
        status, payload = await admin(client, "GET", "/instances/sample/demo/")
        reason = payload["data"]["status"]["reason"]
        assert "secret field 'password' cannot be decrypted" in reason
        assert "another key" in reason and "PASSERELLE_SECRET_KEY" in reason
        # Keeping the stored secret on an update cannot work either: a clear 400.
        status, payload = await admin(client, "PATCH", "/instances/sample/demo/", json={"title": "x"})
        assert status == 400
        assert "instance sample/demo" in payload["err_desc"] and "cannot be decrypted" in payload["err_desc"]
        assert other[HUB].registry.callers.get("wcs") is None
    finally:
        await client.close()
    logged = capsys.readouterr().out
    assert "an instance's secret cannot be decrypted" in logged and "sample/demo" in logged
    assert "an API user's key cannot be decrypted" in logged and "wcs" in logged
    everything = logged + answer + str(payload) + reason
    assert CONFIG_SECRET not in everything and API_KEY not in everything
    for value in raw.split("'"):
        if is_encrypted(value):
            assert value.rsplit(":", 1)[1] not in everything


async def test_rekey(hub_app, hub_client, hub_engine):
    await store_secrets(hub_client)
    hub = hub_app[HUB]
    # A plaintext row of an earlier version too.
    async with hub.sessionmaker() as session, session.begin():
        session.add(ApiUser(username="legacy", keytype="API", key="legacy-key"))
    old, new = SecretBox(SECRET_KEY), SecretBox("the new key")

    with pytest.raises(SecretDecryptError, match=r"instance sample/demo, secret field 'password'.*--old-key-file"):
        await rekey(hub.sessionmaker, hub.types, new)
    report = await rekey(hub.sessionmaker, hub.types, new, [old], dry_run=True)
    assert report.values == 3 and report.instances == ["sample/demo"] and report.apiusers == ["legacy", "wcs"]
    assert "legacy-key" in await raw_rows(hub_engine)  # a dry run changes nothing

    await rekey(hub.sessionmaker, hub.types, new, [old])
    raw = await raw_rows(hub_engine)
    assert "legacy-key" not in raw and f"{PREFIX}{new.key_id}:" in raw and f"{PREFIX}{old.key_id}:" not in raw
    # Twice is harmless (every value is under the new key already).
    assert (await rekey(hub.sessionmaker, hub.types, new)).values == 3
    # Types not installed here: their encrypted values are still found.
    assert (await rekey(hub.sessionmaker, {}, SecretBox("third"), [new])).values == 3


# -- the command line ------------------------------------------------------------------------------


def cli(env, *args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "passerelle.cli", *args], env=env, capture_output=True, text=True, input=input
    )


@pytest.fixture
def cli_env(tmp_path):
    env = {**os.environ, "PASSERELLE_DATA_DIR": str(tmp_path / "var"), "WCS_KEY": API_KEY}
    for name in ("PASSERELLE_DATABASE_URL", "PASSERELLE_SECRET_KEY", "PASSERELLE_OLD_SECRET_KEY"):
        env.pop(name, None)
    return env


def write_document(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("apiusers:\n  - {username: wcs, keytype: API, key: {$env: WCS_KEY}}\n")
    return path


def test_cli_works_with_zero_setup_and_rekeys(cli_env, tmp_path):
    # `make run`: no key set, SQLite: a key file is made, the warning goes to stderr.
    result = cli(cli_env, "import", str(write_document(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "generated a secret key" in result.stderr and "generated" not in result.stdout
    key_file = tmp_path / "var" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    database = (tmp_path / "var" / "passerelle.sqlite3").read_bytes()
    assert API_KEY.encode() not in database

    result = cli(cli_env, "secrets", "rekey", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "would re-encrypt 1 secret values: 0 instances, 1 API users"

    # Moving to a key from the environment: the old one comes from the key file.
    new_key = cli(cli_env, "secrets", "generate-key").stdout.strip()
    assert len(new_key) >= 40
    moved = {**cli_env, "PASSERELLE_SECRET_KEY": new_key}
    result = cli(moved, "secrets", "rekey")
    assert result.returncode == 1
    assert "pass the old key with --old-key-file" in result.stderr and "nothing was changed" in result.stderr
    result = cli(moved, "secrets", "rekey", "--old-key-file", str(key_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "re-encrypted 1 secret values: 0 instances, 1 API users"
    result = cli({**moved, "PASSERELLE_SECRET_KEY": "a wrong key"}, "secrets", "rekey", "--dry-run")
    assert result.returncode == 1 and "another key" in result.stderr and "Traceback" not in result.stderr
    assert new_key not in result.stderr + result.stdout


def test_cli_hash_token():
    result = cli(os.environ, "secrets", "hash-token", input="my-token\n")
    assert result.returncode == 0, result.stderr
    from passerelle.admin.auth import hash_token

    assert result.stdout.strip().endswith(hash_token("my-token"))
    assert "my-token" not in result.stdout


def test_cli_refuses_postgresql_without_a_key(cli_env):
    env = {**cli_env, "PASSERELLE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    # The key is checked before the database is even reached.
    for args in (["serve", "--port", "0"], ["import", os.devnull], ["secrets", "rekey"]):
        result = cli(env, *args)
        assert result.returncode == 1, args
        assert "PASSERELLE_SECRET_KEY is not set" in result.stderr and "Traceback" not in result.stderr
