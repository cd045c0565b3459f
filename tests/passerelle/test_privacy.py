"""Privacy, end to end: calls carrying every kind of personal data and secret, through
query strings, JSON bodies, instance configurations, API user keys, a connector that
logs everything it gets (on stdout and in its resource logs), an upstream that echoes
data back, and crashes. Every log line the hub writes, every resource log row stored,
every export (admin API and CLI) and every admin API answer is read: none of the values
may appear; the citizen's NameID must, and erasing the NameID removes its rows."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import select

from passerelle import Connector, Context, Param, endpoint
from passerelle.hub import HUB
from passerelle.logs import configure_logging
from passerelle.storage.models import ResourceLog
from passerelle.testing import ADMIN_TOKEN, SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

NAME_ID = "f3a9c2e47b1d4e8a9c0b2d4e6f8a1c3e"
EMAIL = "camille.dupont@example.org"
PHONE = "06 12 34 56 78"
PHONE_INTL = "+33 6 12 34 56 78"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
NIR = "1 85 05 78 006 084 91"
CARD = "4111 1111 1111 1111"
PIN = "739146"
PASSWORD = "hunter2-Pw-Zx"
CONFIG_SECRET = "cfg-s3cr3t-Qa71"
UPSTREAM_TOKEN = "upstream-tok-Lm44"
ECHOED_TOKEN = "bad-token-Echo-Kp09"
API_KEY = "apikey-Wm52-very-secret"
ROTATED_KEY = "apikey-Rt19-rotated"

FORBIDDEN = [
    EMAIL,
    EMAIL.replace("@", "%40"),
    PHONE,
    PHONE.replace(" ", ""),
    PHONE_INTL,
    PHONE_INTL.replace(" ", ""),
    IBAN,
    IBAN.replace(" ", ""),
    NIR,
    NIR.replace(" ", ""),
    CARD,
    CARD.replace(" ", ""),
    PIN,
    PASSWORD,
    CONFIG_SECRET,
    UPSTREAM_TOKEN,
    ECHOED_TOKEN,
    API_KEY,
    ROTATED_KEY,
    ADMIN_TOKEN,
    base64.b64encode(f"wcs:{API_KEY}".encode()).decode(),
]

logger = structlog.get_logger("leaky")
stdlib_logger = logging.getLogger("leaky.stdlib")


class LeakyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="Base URL of the application.")
    password: SecretStr = Field(description="Password on the application.")
    token: SecretStr | None = Field(None, description="API token on the application.")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().startswith("bad-"):
            # A careless connector: its message echoes the secret.
            raise ValueError(f"token {value.get_secret_value()} is malformed")
        return value


class Leaky(Connector):
    """A connector that logs everything it is given, as a careless one would."""

    slug = "leaky"
    title = "Leaky"
    description = "Logs everything."
    Config = LeakyConfig

    @endpoint(description="Looks an account up.")
    async def lookup(self, ctx: Context, **kwargs: str) -> dict[str, Any]:
        logger.info("lookup", query=dict(ctx.query), params=kwargs, headers=dict(ctx.headers), name_id=ctx.name_id)
        stdlib_logger.warning("lookup of %s, card %s, iban %s", kwargs.get("mail"), kwargs.get("card"), kwargs["iban"])
        # And into its resource logs, stored in the database.
        self.logger.info("lookup", query=dict(ctx.query), params=kwargs, headers=dict(ctx.headers))
        self.logger.warning(f"lookup of {kwargs.get('mail')}, card {kwargs.get('card')}, iban {kwargs['iban']}")
        token = self.config.token.get_secret_value() if self.config.token else ""
        response = await self.http.get(
            f"{self.config.url}/accounts/{kwargs['mail']}/",
            params={"apikey": token, "email": kwargs["mail"], "phone": kwargs["tel"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        return {"found": response.json()["found"]}

    @endpoint(description="Links an account.", methods=["post"], body={"type": "object"})
    async def link(self, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
        logger.info("link", body=body, body_text=json.dumps(body), name_id=ctx.name_id)
        self.logger.info(f"link {json.dumps(body)}", body=body)
        try:
            int(body["iban"])
        except ValueError:
            logger.exception("the IBAN is not a number", iban_given=body["iban"])
            self.logger.exception(f"the IBAN {body['iban']} is not a number", iban_given=body["iban"])
        # The application fails and echoes what it was sent.
        await self.http.post(f"{self.config.url}/verify", json=body)
        return {}

    @endpoint(description="Crashes.", pattern=r"^(?P<who>[^/]+)/$", example_pattern="{who}/")
    async def crash(self, who: Annotated[str, Param("Who", example="x")]) -> None:
        self.logger.error(f"crashing for {who}", who=who, pin=PIN)
        raise RuntimeError(f"no account for {who} (NIR {NIR.replace(' ', '')}, phone {PHONE_INTL}, pin {PIN})")


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "leaky": Leaky}


@pytest.fixture
def json_logs(capsys):
    """Starts the hub's own logging configuration (JSON lines on stdout, read with
    capsys); restored afterwards. Started from the test itself: capsys gives each
    test phase its own stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def start() -> Any:
        configure_logging("INFO", "json")
        structlog.configure(cache_logger_on_first_use=False)
        return capsys

    yield start
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def cli(env: dict[str, str], *args: str) -> str:
    """Run the `passerelle` command with the Leaky type installed; its stdout and stderr."""
    wrapper = (
        "import passerelle.cli as cli\n"
        "from tests.passerelle.test_privacy import Leaky\n"
        "found = cli.connector_types\n"
        "cli.connector_types = lambda settings: {**found(settings), 'leaky': Leaky}\n"
        "cli.main(args=sys.argv[1:], prog_name='passerelle')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + wrapper, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return f"$ passerelle {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"


async def resource_logs(hub: Any) -> list[ResourceLog]:
    async with hub.sessionmaker() as session:
        return list((await session.scalars(select(ResourceLog).order_by(ResourceLog.id))).all())


def check_clean(where: str, text: str) -> None:
    for value in FORBIDDEN:
        assert value not in text, f"{value!r} found in {where}:\n{text}"


async def test_nothing_personal_nor_secret_is_logged_exported_or_answered(
    hub_client, hub_app, hub_settings, hub_database_url, fake_upstream, json_logs, tmp_path
):
    hub_settings.resource_log_level = "DEBUG"  # store every call line: all of them must be clean
    logs = json_logs()
    answers: list[tuple[str, str]] = []

    async def admin(method: str, path: str, expected: int, **kwargs: Any) -> Any:
        response = await hub_client.request(method, f"/manage/api{path}", headers=AUTH, **kwargs)
        body = await response.text()
        answers.append((f"{method} {path}", body))
        assert response.status == expected, body
        return json.loads(body)

    fake_upstream.reply("GET", f"/accounts/{EMAIL}/", json={"found": True})
    fake_upstream.reply(
        "POST", "/verify", status=500, body=f"Traceback: card {CARD} refused for {EMAIL} (IBAN {IBAN}, pin {PIN})"
    )

    # Configuration: an API user's key, an instance's secrets, an invalid secret echoed by a validator.
    await admin("PUT", "/apiusers/wcs/", 201, json={"keytype": "API", "key": API_KEY})
    instance = {
        "type": "leaky",
        "slug": "demo",
        "title": "Demo",
        "config": {"url": fake_upstream.url, "password": CONFIG_SECRET, "token": UPSTREAM_TOKEN},
        "access": [{"apiuser": "wcs", "perm": "can_access"}],
    }
    await admin("POST", "/instances/", 201, json=instance)
    broken = {**instance, "slug": "broken", "config": {**instance["config"], "token": ECHOED_TOKEN}}
    payload = await admin("POST", "/instances/", 400, json=broken)
    assert "config.token" in payload["err_desc"] and "[secret]" in payload["err_desc"]
    await admin("POST", "/import/?dry_run=1", 400, json={"instances": [broken]})
    await admin("PATCH", "/instances/leaky/demo/", 200, json={"config": {"token": UPSTREAM_TOKEN}, "title": "Demo"})

    # Calls carrying personal data and secrets: query string, Basic credentials, JSON body, path.
    query = {
        "apikey": API_KEY,
        "NameID": NAME_ID,
        "email": EMAIL,
        "mail": EMAIL,
        "tel": PHONE,
        "iban": IBAN,
        "nir": NIR,
        "card": CARD,
        "pin": PIN,
    }
    response = await hub_client.get("/leaky/demo/lookup", params=query)
    assert response.status == 200, await response.text()
    basic = {"Authorization": "Basic " + base64.b64encode(f"wcs:{API_KEY}".encode()).decode()}
    query.pop("apikey")
    response = await hub_client.get("/leaky/demo/lookup", params=query, headers=basic)
    assert response.status == 200, await response.text()
    wrong = {"Authorization": "Basic " + base64.b64encode(f"wcs:{PASSWORD}".encode()).decode()}
    assert (await hub_client.get("/leaky/demo/lookup", params=query, headers=wrong)).status == 403

    body = {"card": CARD, "pin": PIN, "password": PASSWORD, "iban": IBAN, "nir": NIR, "phone": PHONE_INTL}
    response = await hub_client.post(f"/leaky/demo/link?apikey={API_KEY}&NameID={NAME_ID}", json=body)
    assert response.status == 502
    check_clean("the 502 answer", await response.text())

    response = await hub_client.get(f"/leaky/demo/crash/{EMAIL}/?apikey={API_KEY}")
    assert response.status == 500
    check_clean("the 500 answer", await response.text())

    # The key rotates; everything is read back through the admin API.
    await admin("POST", "/apiusers/wcs/rotate/", 200, json={"key": ROTATED_KEY, "grace": 600})
    assert (await hub_client.get(f"/leaky/demo/lookup?apikey={ROTATED_KEY}&mail=x@example.org&tel=1&iban=1")).status
    await admin("GET", "/", 200)
    await admin("GET", "/types/leaky/", 200)
    await admin("GET", "/instances/", 200)
    await admin("GET", "/instances/leaky/demo/", 200)
    await admin("GET", "/apiusers/", 200)
    exported = await admin("GET", "/export/", 200)
    assert exported["data"]["instances"][0]["config"]["password"] == {"$env": "PASSERELLE_SECRET_LEAKY_DEMO_PASSWORD"}
    await admin("GET", "/export/?secrets=omit", 200)

    # The command line, on the same database.
    env = {
        **os.environ,
        "PASSERELLE_DATABASE_URL": hub_database_url,
        "PASSERELLE_SECRET_KEY": SECRET_KEY,
        "PASSERELLE_DATA_DIR": str(tmp_path / "cli"),
    }
    bad_file = tmp_path / "broken.json"
    bad_file.write_text(json.dumps({"instances": [broken]}))
    outputs = [
        cli(env, "export"),
        cli(env, "export", "--format", "yaml", "--secrets", "omit"),
        cli(env, "instances", "show", "leaky/demo"),
        cli(env, "instances", "list"),
        cli(env, "check", str(bad_file)),
        cli(env, "import", str(bad_file)),
    ]
    assert "PASSERELLE_SECRET_LEAKY_DEMO_PASSWORD" in outputs[0]
    assert "[secret]" in outputs[4] and "[secret]" in outputs[5]

    # The resource logs, in the database and through the admin API.
    hub = hub_app[HUB]
    await hub.registry.resource_logs.flush(everything=True)
    stored = json.dumps([[r.message, r.name_id, r.extra] for r in await resource_logs(hub)], ensure_ascii=False)
    assert "lookup of [email], card [card], iban [iban]" in stored
    assert "GET lookup → 200" in stored and "POST link → 502" in stored and "GET crash → 500" in stored
    assert NAME_ID in stored
    check_clean("the resource logs", stored)
    await admin("GET", "/instances/leaky/demo/logs/?limit=1000", 200)
    await admin("GET", f"/instances/leaky/demo/logs/?name_id={NAME_ID}", 200)

    # The citizen's rows go with the erasure of the NameID; the others stay.
    about_citizen = [r for r in await resource_logs(hub) if r.name_id == NAME_ID]
    assert len(about_citizen) >= 6  # the calls with a NameID, and every line the connector logged in them
    erased = await admin("DELETE", f"/citizens/{NAME_ID}/", 200)
    assert erased["data"]["removed"]["resource logs"] == len(about_citizen)
    remaining = await resource_logs(hub)
    assert remaining and all(r.name_id != NAME_ID for r in remaining)
    shown = await admin("GET", f"/citizens/{NAME_ID}/", 200)
    assert shown["data"]["resource logs"] == 0

    logged = logs.readouterr()
    lines = [line for line in logged.out.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    names = {event["event"] for event in events}
    assert {"lookup", "link", "upstream call", "unexpected error", "access refused"} <= names, names
    assert any(line.startswith("lookup of") for line in names)  # the standard library's line
    assert any(event.get("exception") for event in events)

    check_clean("the logs", logged.out + logged.err)
    for where, answer in answers:
        check_clean(f"the admin API answer to {where}", answer)
    for output in outputs:
        check_clean("the command line", output)

    # What must stay, stays: the NameID, and markers where data was.
    assert NAME_ID in logged.out
    for marker in ("[email]", "[phone]", "[iban]", "[nir]", "[card]", "[secret]"):
        assert marker in logged.out, marker
