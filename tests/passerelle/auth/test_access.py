"""The permission check through real HTTP requests: every key type with and without
the right, IP allow-lists, Publik signatures (tampered variants, replays, across two
processes, with Redis), trusted services and key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from structlog.testing import capture_logs
from yarl import URL

from passerelle import Connector, Context, Param, endpoint
from passerelle.app import create_app
from passerelle.auth.access import ACCESS, AccessChecker
from passerelle.auth.signature import sign_query, sign_url
from passerelle.hub import HUB
from passerelle.instances import Caller
from passerelle.testing import ADMIN_TOKEN
from tests.conftest import POSTGRESQL_URL
from tests.passerelle.auth.conftest import free_port, wait_for_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERVICE = "wcs.example.org"
SERVICE_SECRET = "hobo-derived-secret"
DENIED = {"err": 1, "err_class": "passerelle.envelope.PermissionDenied", "err_desc": "permission denied", "data": None}
# Said when nobody holds the right: it depends on the configuration only, never on the request.
NOBODY = {**DENIED, "err_desc": "permission denied: no API user may call this endpoint"}


class WhoAmI(Connector):
    slug = "whoami"
    title = "Who am I"
    description = "Tells who the hub thinks is calling."

    @endpoint(description="The caller as the access check saw it.")
    async def me(self, ctx: Context, **extra: str) -> dict[str, Any]:
        return {"apiuser": ctx.apiuser, "NameID": ctx.name_id}

    @endpoint(description="Needs another right.", perm="can_admin")
    async def admin(self, ctx: Context) -> str | None:
        return ctx.apiuser

    @endpoint(description="Anyone.", perm="public")
    async def ping(self, q: Annotated[str | None, Param("Anything", example="x")] = None) -> str:
        return "pong"


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "whoami": WhoAmI}


@pytest.fixture
def hub_settings(hub_settings):
    return hub_settings.model_copy(update={"known_services": {SERVICE: SecretStr(SERVICE_SECRET)}})


USERS = [
    {"username": "everyone", "keytype": ""},
    {"username": "integrator", "keytype": "API", "key": "api-key-1"},
    {"username": "forms.example.org", "keytype": "SIGN", "key": "sign-key-1"},
    {"username": "lan-only", "keytype": "API", "key": "lan-key", "ipsource": "10.0.0.0/8"},
    {"username": "local-only", "keytype": "API", "key": "local-key", "ipsource": "127.0.0.0/8, ::1/128"},
    {"username": "lan-signer", "keytype": "SIGN", "key": "lan-sign-key", "ipsource": "10.0.0.0/8"},
    {"username": "local-signer", "keytype": "SIGN", "key": "local-sign-key", "ipsource": "127.0.0.1/32,::1"},
    {"username": "lan-open", "keytype": "", "ipsource": "10.0.0.0/8"},
]


async def import_document(client: TestClient, document: dict[str, Any]) -> None:
    """Through the admin API, as an operator would (and whatever stores the keys)."""
    response = await client.post("/manage/api/import/", json=document, headers=ADMIN)
    assert response.status == 200, await response.text()


async def configure(client: TestClient, instances: dict[str, list[str]], users=USERS, perm: str = "can_access") -> None:
    """Instances of whoami named after the dict keys, with the listed users holding ``perm``."""
    document = {
        "apiusers": users,
        "instances": [
            {
                "type": "whoami",
                "slug": slug,
                "title": slug,
                "access": [{"apiuser": name, "perm": perm} for name in holders],
            }
            for slug, holders in instances.items()
        ],
    }
    await import_document(client, document)


async def call(client: TestClient, target: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET ``target`` with its query string sent byte for byte (yarl re-encodes otherwise)."""
    url = URL(str(client.make_url("")).rstrip("/") + target, encoded=True)
    async with client.session.get(url, headers=headers or {}) as response:
        return response.status, await response.json()


def signed(path: str, key: str, orig: str, query: str = "", **kwargs: Any) -> str:
    base = f"orig={quote(orig, safe='')}" + (f"&{query}" if query else "")
    return f"{path}?{sign_query(base, key, **kwargs)}"


def basic(username: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()}


def refusals(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "access refused"]


# -- every key type, with and without the right ----------------------------------------


async def test_open_user_accepts_anyone_without_checking_credentials(hub_app, hub_client):
    await configure(hub_client, {"demo": ["everyone", "integrator"]})
    assert await call(hub_client, "/whoami/demo/me") == (
        200,
        {"err": 0, "data": {"apiuser": "everyone", "NameID": None}},
    )
    # Credentials are not even looked at: a wrong key or signature still gets in as "everyone".
    status, payload = await call(hub_client, "/whoami/demo/me?apikey=wrong")
    assert (status, payload["data"]["apiuser"]) == (200, "everyone")
    status, _ = await call(hub_client, signed("/whoami/demo/me", "wrong", "forms.example.org"))
    assert status == 200
    # Without the right, the open user gives nothing.
    assert await call(hub_client, "/whoami/demo/admin") == (403, NOBODY)


async def test_api_key_as_query_parameter_and_http_basic(hub_app, hub_client):
    await configure(hub_client, {"demo": ["integrator"], "other": ["local-only"]})
    assert await call(hub_client, "/whoami/demo/admin?apikey=api-key-1") == (403, NOBODY)  # nobody has can_admin
    assert (await call(hub_client, "/whoami/demo/me?apikey=api-key-1"))[1]["data"]["apiuser"] == "integrator"
    status, payload = await call(hub_client, "/whoami/demo/me", basic("integrator", "api-key-1"))
    assert (status, payload["data"]["apiuser"]) == (200, "integrator")
    for target, headers in [
        ("/whoami/demo/me", None),  # no credentials
        ("/whoami/demo/me?apikey=api-key-2", None),  # wrong key
        ("/whoami/demo/me?apikey=", None),
        ("/whoami/demo/me", basic("integrator", "wrong")),
        ("/whoami/demo/me", basic("someone", "api-key-1")),  # right key, wrong user
        ("/whoami/demo/me", {"Authorization": "Basic !!!"}),
        ("/whoami/demo/me", {"Authorization": "Bearer api-key-1"}),
        ("/whoami/other/me?apikey=api-key-1", None),  # a right on another instance only
        ("/whoami/demo/me?apikey=local-key", None),  # a user without the right here
        # a SIGN user's key is not an API key
        ("/whoami/demo/me?apikey=sign-key-1", None),
    ]:
        assert await call(hub_client, target, headers) == (403, DENIED), target


async def test_sign_user(hub_app, hub_client):
    await configure(hub_client, {"demo": ["forms.example.org"], "other": ["integrator"]})
    assert await call(hub_client, signed("/whoami/demo/admin", "sign-key-1", "forms.example.org")) == (403, NOBODY)
    target = signed("/whoami/demo/me", "sign-key-1", "forms.example.org", "NameID=abc&email=jean%40example.org")
    assert await call(hub_client, target) == (
        200,
        {"err": 0, "data": {"apiuser": "forms.example.org", "NameID": "abc"}},
    )
    for target, headers in [
        (signed("/whoami/demo/me", "sign-key-2", "forms.example.org"), None),  # wrong key
        (signed("/whoami/demo/me", "sign-key-1", "unknown.example.org"), None),  # unknown orig
        (signed("/whoami/other/me", "sign-key-1", "forms.example.org"), None),  # no right on this instance
        ("/whoami/demo/me", basic("forms.example.org", "sign-key-1")),  # a SIGN key is not for Basic
    ]:
        assert await call(hub_client, target, headers) == (403, DENIED), target


async def test_no_api_user_holds_the_right(hub_app, hub_client):
    await configure(hub_client, {"demo": []})
    assert await call(hub_client, "/whoami/demo/me?apikey=api-key-1") == (403, NOBODY)
    assert await call(hub_client, "/whoami/demo/ping") == (200, {"err": 0, "data": "pong"})


# -- IP allow-lists ------------------------------------------------------------------------


async def test_ip_allow_list_in_and_out_for_each_key_type(hub_app, hub_client):
    # The test client connects from 127.0.0.1.
    everyone_but = [u["username"] for u in USERS if u["username"] != "everyone"]
    await configure(hub_client, {"demo": everyone_but, "lan": ["lan-open"]})
    # In the list.
    assert (await call(hub_client, "/whoami/demo/me?apikey=local-key"))[0] == 200
    assert (await call(hub_client, "/whoami/demo/me", basic("local-only", "local-key")))[0] == 200
    assert (await call(hub_client, signed("/whoami/demo/me", "local-sign-key", "local-signer")))[0] == 200
    # Out of the list: good credentials, wrong address.
    with capture_logs() as logs:
        assert await call(hub_client, "/whoami/demo/me?apikey=lan-key") == (403, DENIED)
        assert await call(hub_client, "/whoami/demo/me", basic("lan-only", "lan-key")) == (403, DENIED)
        assert await call(hub_client, signed("/whoami/demo/me", "lan-sign-key", "lan-signer")) == (403, DENIED)
        assert await call(hub_client, "/whoami/lan/me") == (403, DENIED)
    reasons = [entry["reasons"] for entry in refusals(logs)]
    open_refused = "source address outside the open API user's allow-list"  # lan-open holds the right too
    assert reasons == [
        ["API key of 'lan-only' from an address outside its allow-list", open_refused],
        ["HTTP Basic of 'lan-only' from an address outside its allow-list", open_refused],
        ["signature: source address outside the API user's allow-list", open_refused],
        ["no credentials", open_refused],
    ]


def test_caller_allows_ip():
    caller = Caller("u", "API", "k", (__import__("ipaddress").ip_network("192.168.0.0/16"),))
    assert caller.allows_ip("192.168.3.4")
    assert not caller.allows_ip("10.0.0.1")
    assert not caller.allows_ip(None)
    assert not caller.allows_ip("not an address")
    assert Caller("u", "API", "k").allows_ip(None)


# -- Publik signatures through HTTP: tampered variants --------------------------------------


def resign(signed_part: str, key: str, algo: str = "sha256") -> str:
    digest = hmac.new(key.encode(), signed_part.encode(), getattr(hashlib, algo)).digest()
    return signed_part + "&signature=" + quote(base64.b64encode(digest))


def tampered_variants(now: datetime) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label, query string, possible logged reasons) for the SIGN user forms.example.org."""
    key, orig = "sign-key-1", "forms.example.org"

    def sign(query: str = f"orig={orig}&NameID=abc", **kwargs: Any) -> str:
        return sign_query(query, kwargs.pop("key", key), **kwargs)

    good = sign()
    signed_part, _, signature = good.partition("&signature=")
    params = signed_part.split("&")

    def without(name: str) -> str:
        return resign("&".join(p for p in params if not p.startswith(name + "=")), key)

    decoded = unquote(signature)
    changed_signature = quote(decoded[:5] + ("A" if decoded[5] != "A" else "B") + decoded[6:])
    mismatch = ("signature mismatch",)
    variants = [
        ("a byte of the NameID changed", good.replace("NameID=abc", "NameID=abd"), mismatch),
        ("a byte of orig changed", good.replace("orig=forms", "orig=formz"), ("unknown orig",)),
        ("a byte of the nonce changed", good.replace("&nonce=", "&nonce=0"), mismatch),
        ("a byte of the timestamp changed", good.replace("%3A", "%3B", 1), ("malformed timestamp",)),
        ("a byte of algo changed", good.replace("algo=sha256", "algo=sha257"), ("algorithm not allowed",)),
        ("a byte of the signature changed", f"{signed_part}&signature={changed_signature}", mismatch),
        ("parameters reordered", "&".join([params[1], params[0], *params[2:]]) + "&signature=" + signature, mismatch),
        ("signature not last", good + "&email=x", ("the signature is not the last parameter",)),
        ("signature first", f"signature={signature}&{signed_part}", ("the signature is the first parameter",)),
        ("missing orig", without("orig"), ("missing orig",)),
        ("missing algo", without("algo"), ("missing algo",)),
        ("missing timestamp", without("timestamp"), ("missing timestamp",)),
        ("missing nonce", without("nonce"), ("missing nonce",)),
        ("unknown orig", sign("orig=stranger.example.org"), ("unknown orig, or it holds no right here",)),
        ("forbidden algo md5", resign(signed_part.replace("algo=sha256", "algo=md5"), key, "md5"), ("algorithm",)),
        ("wrong key", sign(key="another-key"), mismatch),
        ("timestamp beyond the window, past", sign(timestamp=now - timedelta(seconds=40)), ("seconds in the past",)),
        ("timestamp beyond the window, future", sign(timestamp=now + timedelta(seconds=40)), ("in the future",)),
        ("timestamp a day old", sign(timestamp=now - timedelta(days=1)), ("seconds in the past",)),
        ("re-encoded by a proxy", good.replace("%3A", ":"), mismatch),
    ]
    return variants


async def test_every_tampered_variant_is_refused_with_the_same_answer(hub_app, hub_client):
    await configure(hub_client, {"demo": ["forms.example.org"]})
    now = datetime.now(UTC)
    for label, query, expected_reason in tampered_variants(now):
        with capture_logs() as logs:
            assert await call(hub_client, "/whoami/demo/me?" + query) == (403, DENIED), label
        (entry,) = refusals(logs)
        assert entry["log_level"] == "warning"
        assert entry["target"] == "whoami/demo/me"
        assert any(e in reason for e in expected_reason for reason in entry["reasons"]), (label, entry["reasons"])
        # Never the key, the signature, the nonce or the query in the log line.
        text = repr(entry)
        assert "sign-key-1" not in text and "signature=" not in text and query not in text
        for part in query.split("&"):
            if part.startswith(("signature=", "nonce=")):
                assert part.partition("=")[2] not in text, label
    # ...and the untampered request passes.
    assert (await call(hub_client, signed("/whoami/demo/me", "sign-key-1", "forms.example.org")))[0] == 200


async def test_a_replayed_nonce_is_refused(hub_app, hub_client):
    await configure(hub_client, {"demo": ["forms.example.org"]})
    target = signed("/whoami/demo/me", "sign-key-1", "forms.example.org", "NameID=abc")
    assert (await call(hub_client, target))[0] == 200
    with capture_logs() as logs:
        assert await call(hub_client, target) == (403, DENIED)
    assert refusals(logs)[0]["reasons"] == ["signature: nonce already used (replay)"]
    assert refusals(logs)[0]["orig"] == "forms.example.org"
    # The nonce is spent only by a valid signature: a forged request cannot burn it.
    nonce = uuid.uuid4().hex
    forged = signed("/whoami/demo/me", "wrong", "forms.example.org", nonce=nonce)
    real = signed("/whoami/demo/me", "sign-key-1", "forms.example.org", nonce=nonce)
    assert (await call(hub_client, forged))[0] == 403
    assert (await call(hub_client, real))[0] == 200
    # The same nonce sent to another endpoint or instance is still a replay.
    await configure(hub_client, {"demo": ["forms.example.org"], "other": ["forms.example.org"]})
    again = signed("/whoami/other/me", "sign-key-1", "forms.example.org", nonce=nonce)
    assert await call(hub_client, again) == (403, DENIED)


async def test_publik_request_as_wcs_sends_it(hub_app, hub_client):
    """w.c.s. adds orig, NameID and email, then signs; the endpoint sees NameID."""
    await configure(hub_client, {"demo": ["forms.example.org"]})
    url = "http://hub.example.org/whoami/demo/me?NameID=3f2a&email=jean%40example.org&orig=forms.example.org"
    target = sign_url(url, "sign-key-1").removeprefix("http://hub.example.org")
    status, payload = await call(hub_client, target)
    assert (status, payload["data"]) == (200, {"apiuser": "forms.example.org", "NameID": "3f2a"})


async def test_window_follows_the_setting(hub_app, hub_client):
    await configure(hub_client, {"demo": ["forms.example.org"]})
    hub_app[ACCESS].max_age = 120
    old = signed(
        "/whoami/demo/me", "sign-key-1", "forms.example.org", timestamp=datetime.now(UTC) - timedelta(seconds=90)
    )
    assert (await call(hub_client, old))[0] == 200


# -- trusted services -------------------------------------------------------------------------


async def test_trusted_service_is_allowed_everywhere_without_an_api_user(hub_app, hub_client):
    await configure(hub_client, {"demo": [], "other": ["integrator"]})
    for path in ("/whoami/demo/me", "/whoami/demo/admin", "/whoami/other/me"):
        status, payload = await call(hub_client, signed(path, SERVICE_SECRET, SERVICE, "NameID=abc"))
        assert status == 200, path
    status, payload = await call(hub_client, signed("/whoami/demo/me", SERVICE_SECRET, SERVICE))
    assert payload["data"]["apiuser"] == SERVICE
    # The secret signs only for its own orig; a wrong secret is refused.
    assert await call(hub_client, signed("/whoami/demo/me", SERVICE_SECRET, "forms.example.org")) == (403, NOBODY)
    assert await call(hub_client, signed("/whoami/other/me", "guess", SERVICE)) == (403, DENIED)
    # And its requests are replay-checked like the others.
    target = signed("/whoami/other/me", SERVICE_SECRET, SERVICE)
    assert (await call(hub_client, target))[0] == 200
    assert await call(hub_client, target) == (403, DENIED)


async def test_no_trusted_service_configured(hub_settings, hub_connector_types, hub_engine):
    settings = hub_settings.model_copy(update={"known_services": {}})
    app = create_app(settings, types=hub_connector_types, engine=hub_engine)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await configure(client, {"demo": []})
        target = signed("/whoami/demo/me", SERVICE_SECRET, SERVICE)
        status, payload = await call(client, target)
        assert (status, payload["err_desc"]) == (403, "permission denied: no API user may call this endpoint")


# -- key rotation ----------------------------------------------------------------------------------


def test_caller_active_keys_follow_the_expiry():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    caller = Caller("u", "API", "new", previous_key="old", previous_key_expires=now + timedelta(hours=1))
    assert caller.active_keys(now) == ("new", "old")
    assert caller.active_keys(now + timedelta(hours=1)) == ("new",)
    naive = Caller("u", "API", "new", previous_key="old", previous_key_expires=datetime(2026, 1, 1, 13))
    assert naive.active_keys(now) == ("new", "old")
    assert Caller("u", "API", "new", previous_key="old").active_keys(now) == ("new",)  # no expiry: not accepted
    assert "old" not in repr(caller) and "new" not in repr(caller)


async def test_rotation_both_keys_work_until_expiry_then_only_the_new_one(hub_app, hub_client):
    await configure(hub_client, {"demo": ["integrator", "forms.example.org"]})
    admin = ADMIN
    for username, new_key in (("integrator", "api-key-2"), ("forms.example.org", "sign-key-2")):
        response = await hub_client.post(
            f"/manage/api/apiusers/{username}/rotate/", json={"key": new_key, "grace": 3600}, headers=admin
        )
        payload = await response.json()
        assert response.status == 200, payload
        assert payload["data"]["previous_key_set"] is True
    # During the rotation both keys are accepted, as API keys and as signature secrets.
    for key in ("api-key-1", "api-key-2"):
        assert (await call(hub_client, f"/whoami/demo/me?apikey={key}"))[0] == 200
        assert (await call(hub_client, "/whoami/demo/me", basic("integrator", key)))[0] == 200
    for key in ("sign-key-1", "sign-key-2"):
        assert (await call(hub_client, signed("/whoami/demo/me", key, "forms.example.org")))[0] == 200
    # Once the previous key expires, only the new one works.
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    users = [
        {"username": "integrator", "keytype": "API", "previous_key_expires": past},
        {"username": "forms.example.org", "keytype": "SIGN", "previous_key_expires": past},
    ]
    await import_document(hub_client, {"apiusers": users})
    assert await call(hub_client, "/whoami/demo/me?apikey=api-key-1") == (403, DENIED)
    assert await call(hub_client, "/whoami/demo/me", basic("integrator", "api-key-1")) == (403, DENIED)
    assert await call(hub_client, signed("/whoami/demo/me", "sign-key-1", "forms.example.org")) == (403, DENIED)
    assert (await call(hub_client, "/whoami/demo/me?apikey=api-key-2"))[0] == 200
    assert (await call(hub_client, signed("/whoami/demo/me", "sign-key-2", "forms.example.org")))[0] == 200


async def test_rotation_expires_by_the_clock_without_a_reload(hub_app, hub_client):
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    users = [
        {"username": "integrator", "keytype": "API", "key": "k2", "previous_key": "k1", "previous_key_expires": soon}
    ]
    await configure(hub_client, {"demo": ["integrator"]}, users=users)
    assert (await call(hub_client, "/whoami/demo/me?apikey=k1"))[0] == 200
    await asyncio.sleep(2.1)
    assert await call(hub_client, "/whoami/demo/me?apikey=k1") == (403, DENIED)
    assert (await call(hub_client, "/whoami/demo/me?apikey=k2"))[0] == 200


# -- nonce store failures and Redis -------------------------------------------------------------------


async def test_a_failing_nonce_store_refuses_with_503(hub_app, hub_client):
    await configure(hub_client, {"demo": ["forms.example.org"]})

    class Broken:
        async def use(self, nonce, expires):
            raise ConnectionError("down")

        async def close(self):
            pass

    hub_app[ACCESS].nonces = Broken()
    with capture_logs() as logs:
        status, payload = await call(hub_client, signed("/whoami/demo/me", "sign-key-1", "forms.example.org"))
    assert (status, payload["err_desc"]) == (503, "the signature could not be checked, try again later")
    assert any(entry["log_level"] == "error" for entry in logs)
    # API keys do not need the store.
    await configure(hub_client, {"demo": ["integrator"]})
    assert (await call(hub_client, "/whoami/demo/me?apikey=api-key-1"))[0] == 200


async def test_replay_refused_with_the_redis_store(hub_settings, hub_connector_types, hub_engine, redis_url):
    settings = hub_settings.model_copy(update={"redis_url": redis_url})
    app = create_app(settings, types=hub_connector_types, engine=hub_engine)
    other = create_app(settings, types=hub_connector_types, engine=hub_engine)
    async with (
        TestClient(TestServer(app, host="127.0.0.1")) as client,
        TestClient(TestServer(other, host="127.0.0.1")) as second,
    ):
        assert type(app[ACCESS].nonces).__name__ == "RedisNonceStore"
        await configure(client, {"demo": ["forms.example.org"]})
        await other[HUB].registry.reload()
        target = signed("/whoami/demo/me", "sign-key-1", "forms.example.org")
        assert (await call(client, target))[0] == 200
        assert await call(client, target) == (403, DENIED)
        assert await call(second, target) == (403, DENIED)
        fresh = signed("/whoami/demo/me", "sign-key-1", "forms.example.org")
        assert (await call(second, fresh))[0] == 200
        assert await call(client, fresh) == (403, DENIED)


async def test_checker_closes_its_store(hub_settings, hub_engine):
    closed = []

    class Store:
        async def use(self, nonce, expires):
            return True

        async def close(self):
            closed.append(True)

    from passerelle.storage import make_sessionmaker

    checker = AccessChecker(hub_settings, make_sessionmaker(hub_engine), nonces=Store())
    await checker.close()
    assert closed == [True]


# -- a replay sent to a second hub process sharing PostgreSQL ---------------------------------------


@pytest.fixture
def second_hub(hub_settings, hub_engine, tmp_path: Path):
    """A real `passerelle serve` process on the same database, stopped by its PID."""
    port = free_port()
    env = {
        **os.environ,
        "PASSERELLE_DATABASE_URL": hub_settings.database_url,
        "PASSERELLE_DATA_DIR": str(tmp_path / "second"),
        "PASSERELLE_HOST": "127.0.0.1",
        "PASSERELLE_PORT": str(port),
        "PASSERELLE_AUTO_MIGRATE": "false",
        "PASSERELLE_RUN_PERIODIC_JOBS": "false",
        "PASSERELLE_CONFIG_REFRESH_INTERVAL": "0.2",
        "PASSERELLE_LOG_LEVEL": "WARNING",
        "PASSERELLE_REDIS_URL": "",
        "PASSERELLE_KNOWN_SERVICES": "{}",
        # The same key as this process, to read the secrets stored in the shared database.
        "PASSERELLE_SECRET_KEY": hub_settings.secret_key.get_secret_value(),
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "passerelle"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for_port(port, timeout=30, alive=lambda: process.poll() is None):
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
            pytest.fail(f"the second hub did not start:\n{output}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def get_raw(base: str, target: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(URL(base + target, encoded=True)) as response:
        return response.status, await response.json()


@pytest.mark.skipif(POSTGRESQL_URL is None, reason="needs PostgreSQL (make test starts one)")
@pytest.mark.parametrize("hub_database_url", [POSTGRESQL_URL], ids=["postgresql"])
async def test_a_replay_sent_to_a_second_process_is_refused(hub_app, hub_client, second_hub, tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text("id,text\n1,Un\n2,Deux\n")
    document = {
        "apiusers": [{"username": "forms.example.org", "keytype": "SIGN", "key": "sign-key-1"}],
        "instances": [
            {
                "type": "csvdatasource",
                "slug": "items",
                "title": "Items",
                "config": {"source": str(csv)},
                "access": [{"apiuser": "forms.example.org"}],
            }
        ],
    }
    await import_document(hub_client, document)

    def target() -> str:
        return signed("/csvdatasource/items/data", "sign-key-1", "forms.example.org", "NameID=abc")

    # Wait for the second process to load the instance (it polls the version row).
    deadline = time.monotonic() + 15
    probe = target()
    while (status := (await get_raw(second_hub, probe))[0]) != 200 and time.monotonic() < deadline:
        probe = target()
        await asyncio.sleep(0.1)
    assert status == 200

    # Accepted here, replayed there: refused. And the other way round.
    first = target()
    status, payload = await call(hub_client, first)
    assert status == 200 and sorted(i["id"] for i in payload["data"]) == ["1", "2"]
    assert await get_raw(second_hub, first) == (403, DENIED)
    second = target()
    assert (await get_raw(second_hub, second))[0] == 200
    assert await call(hub_client, second) == (403, DENIED)
