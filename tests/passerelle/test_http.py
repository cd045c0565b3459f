"""The outbound client (passerelle.http): options, headers and authentication, TLS,
proxy, bodies, logs, metrics, per-instance overrides. Failures, retries and the
breaker are drilled in test_http_faults.py."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import BasicAuth, web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import generate_latest
from pydantic import BaseModel, Field, SecretStr, ValidationError
from structlog.testing import capture_logs

from passerelle import HttpConfig, metrics
from passerelle.connectors import Connector, InstanceInfo
from passerelle.envelope import InternalError, UpstreamError, UpstreamUnavailable
from passerelle.http import (
    LIVE_CLIENTS,
    HttpClient,
    HttpOptions,
    Response,
    options_from_config,
    parse_retry_after,
    redact_url,
    upstream_of,
)
from passerelle.requestid import CURRENT_REQUEST_ID
from passerelle.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    found = HttpClient("test/http", HttpOptions(retries=0))
    yield found
    await found.close()


# -- options ---------------------------------------------------------------------


def test_default_options_stay_under_the_callers_deadline():
    options = HttpOptions()
    assert options.total_timeout == 25 < 28
    assert options.connect_timeout < options.total_timeout
    assert options.read_timeout is not None and options.read_timeout < options.total_timeout
    assert options.retries == 2
    assert options.breaker_threshold == 5 and options.breaker_open_duration == 30


@pytest.mark.parametrize(
    "wrong",
    [
        {"total_timeout": 0},
        {"connect_timeout": -1},
        {"read_timeout": 0},
        {"max_connections": 0},
        {"max_connections_per_host": 0},
        {"retries": -1},
        {"breaker_threshold": -1},
        {"bearer_token": "t", "username": "u"},
        {"client_key": "key.pem"},
    ],
)
def test_wrong_options_are_refused(wrong):
    with pytest.raises(ValueError):
        HttpOptions(**wrong)


def test_secrets_stay_out_of_the_options_repr():
    options = HttpOptions(username="u", password="pw-secret", headers={"X-A": "1"})
    assert "pw-secret" not in repr(options)
    assert "pw-secret" not in repr(HttpOptions(bearer_token="pw-secret"))


async def test_connection_limits_are_explicit(client):
    session = HttpClient("test/limits", HttpOptions(max_connections=7, max_connections_per_host=3)).session()
    try:
        assert session.connector.limit == 7
        assert session.connector.limit_per_host == 3
    finally:
        await session.close()
    assert client.session().connector.limit == 50


def test_upstream_keys():
    assert upstream_of("http://127.0.0.1:8080/a?b=c") == "http://127.0.0.1:8080"
    assert upstream_of("https://User:pw@Example.org/a") == "https://example.org:443"
    assert upstream_of("http://[::1]/x") == "http://[::1]:80"
    with pytest.raises(UpstreamError, match="not an http"):
        upstream_of("/relative")
    with pytest.raises(UpstreamError, match="not an http"):
        upstream_of("ftp://example.org/file")


def test_redact_url():
    assert redact_url("https://user:pw@example.org:8443/patrons/camille@example.org/?apikey=k&q=x#f") == (
        "https://example.org:8443/patrons/[email]/?apikey=…&q=…"
    )
    assert redact_url("http://[::1]:81/x") == "http://[::1]:81/x"


def test_parse_retry_after():
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC).timestamp()
    assert parse_retry_after("Sat, 28 Nov 2026 12:01:00 GMT", now=now) == 60
    assert parse_retry_after("Sat, 28 Nov 2026 11:59:00 GMT", now=now) == 0


# -- per-instance overrides ----------------------------------------------------------


class HttpConnectorConfig(BaseModel):
    url: str = Field("http://127.0.0.1", description="Base URL.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Calls to the application.")
    http_password: SecretStr | None = Field(None, description="HTTP Basic password.")
    http_bearer_token: SecretStr | None = Field(None, description="Bearer token.")


def test_http_config_overrides_only_what_it_sets():
    base = HttpOptions(total_timeout=10, connect_timeout=3, verify_tls=False, headers={"Accept": "application/json"})
    config = HttpConnectorConfig.model_validate(
        {
            "http": {"timeout": 2, "retries": 0, "username": "hub", "headers": {"X-Tenant": "ville"}},
            "http_password": "pw",
        }
    )
    options = options_from_config(config, base)
    assert options.total_timeout == 2
    assert options.connect_timeout == 2
    assert options.read_timeout == 2
    assert options.retries == 0
    assert options.verify_tls is False  # not set by the instance: the connector's default stays
    assert (options.username, options.password) == ("hub", "pw")
    assert options.headers == {"Accept": "application/json", "X-Tenant": "ville"}
    assert options_from_config(HttpConnectorConfig(), base) is base
    token = options_from_config(HttpConnectorConfig.model_validate({"http_bearer_token": "tok"}))
    assert token.bearer_token == "tok"
    limited = options_from_config(HttpConnectorConfig.model_validate({"http": {"rate_limit": 50}}), base)
    assert limited.rate_limit == 50
    assert base.rate_limit is None


def test_http_config_refuses_credentials_stored_in_clear():
    for header in ("Authorization", "X-Api-Key", "Cookie", "X-Auth-Token"):
        with pytest.raises(ValidationError, match="carries a credential"):
            HttpConfig(headers={header: "x"})
    with pytest.raises(ValidationError, match="cannot hold credentials"):
        HttpConfig(proxy="http://user:pw@proxy.example:3128")
    with pytest.raises(ValidationError, match="http:// or https://"):
        HttpConfig(proxy="socks5://proxy.example")
    with pytest.raises(ValidationError, match="password"):
        HttpConfig.model_validate({"password": "x"})  # not a field: secrets are top-level
    assert not any("SecretStr" in repr(info.annotation) for info in HttpConfig.model_fields.values()), (
        "a SecretStr nested in HttpConfig would be stored as '**********'"
    )


def test_the_hub_finds_and_hides_the_secrets_of_the_pattern():
    from passerelle.connectors import secret_fields
    from passerelle.management import public_config, stored_config

    class Typed(Connector):
        slug = "typed-http"
        title = "Typed"
        Config = HttpConnectorConfig

    assert secret_fields(HttpConnectorConfig) == ["http_password", "http_bearer_token"]
    config = HttpConnectorConfig.model_validate({"http": {"username": "hub"}, "http_password": "pw-1"})
    stored = stored_config(config)
    assert stored["http_password"] == "pw-1"  # stored (and encrypted by the hub), not '**********'
    visible, secrets = public_config(Typed, stored)
    assert visible == {"http": {"username": "hub"}}
    assert secrets == ["http_password"]


async def test_connector_http_options_read_the_configuration():
    class Typed(Connector):
        slug = "typed-http"
        title = "Typed"
        Config = HttpConnectorConfig

    config = HttpConnectorConfig.model_validate({"http": {"timeout": 3, "verify_tls": False}, "http_password": "pw"})
    connector = Typed(InstanceInfo(1, "typed-http", "demo", "Demo"), config, Settings())
    try:
        options = connector.http.options
        assert options.total_timeout == 3
        assert options.verify_tls is False
        assert options.password == "pw"
        assert connector.http.name == "typed-http/demo"
    finally:
        await connector.http.close()


# -- headers, authentication, request id -------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # aiohttp 3.14 deprecates auth=
async def test_default_headers_authentication_and_request_id(fake_upstream):
    fake_upstream.reply("GET", "/who", json={"ok": True})
    client = HttpClient(
        "test/auth",
        HttpOptions(username="hub", password="pw", headers={"Accept": "application/json", "X-Tenant": "ville"}),
    )
    token = CURRENT_REQUEST_ID.set("0123456789abcdef0123456789abcdef")
    try:
        await client.get(f"{fake_upstream.url}/who")
        await client.get(f"{fake_upstream.url}/who", headers={"X-Tenant": "autre", "X-Request-ID": "mine"})
        await client.get(f"{fake_upstream.url}/who", auth=BasicAuth("other", "pw2"))
    finally:
        CURRENT_REQUEST_ID.reset(token)
        await client.close()
    first, second, third = fake_upstream.requests
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"hub:pw").decode()
    assert first.headers["Accept"] == "application/json"
    assert first.headers["X-Tenant"] == "ville"
    assert first.headers["User-Agent"] == "passerelle-hub"
    assert first.headers["X-Request-ID"] == "0123456789abcdef0123456789abcdef"
    assert second.headers["X-Tenant"] == "autre"  # the call's header wins
    assert second.headers["X-Request-ID"] == "mine"
    assert third.headers["Authorization"] == "Basic " + base64.b64encode(b"other:pw2").decode()


async def test_bearer_token_and_no_request_id_outside_a_request(fake_upstream):
    fake_upstream.reply("GET", "/who", json={})
    client = HttpClient("test/bearer", HttpOptions(bearer_token="tok-123"))
    try:
        await client.get(f"{fake_upstream.url}/who")
        await client.get(f"{fake_upstream.url}/who", headers={"Authorization": "Token other"})
    finally:
        await client.close()
    first, second = fake_upstream.requests
    assert first.headers["Authorization"] == "Bearer tok-123"
    assert "X-Request-ID" not in first.headers
    assert second.headers["Authorization"] == "Token other"


async def test_json_and_form_bodies(client, fake_upstream):
    fake_upstream.reply("POST", "/things", status=201, json={"id": 1})
    response = await client.post(f"{fake_upstream.url}/things", json={"name": "é"}, params={"dry": "1"})
    assert isinstance(response, Response)
    assert response.status == 201 and response.json() == {"id": 1}
    await client.post(f"{fake_upstream.url}/things", data={"a": "1", "b": "2"})
    await client.put(f"{fake_upstream.url}/things", data="raw text")
    sent_json, sent_form, sent_text = fake_upstream.requests
    assert sent_json.body == b'{"name": "\\u00e9"}'  # what aiohttp itself would send
    assert sent_json.headers["Content-Type"] == "application/json"
    assert sent_json.query == {"dry": ["1"]}
    assert sent_form.body == b"a=1&b=2"
    assert sent_form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent_text.body == b"raw text"
    with pytest.raises(ValueError, match="data and json"):
        await client.post(f"{fake_upstream.url}/things", json={}, data=b"x")


async def test_errors_and_answers(client, fake_upstream):
    fake_upstream.reply("GET", "/missing", status=404, json={"error": "no such thing"})
    fake_upstream.reply("GET", "/broken", status=500, body="Traceback…")
    fake_upstream.reply("GET", "/text", body="not json")
    response = await client.get(f"{fake_upstream.url}/missing")
    assert response.status == 404  # the connector knows what a 404 means
    with pytest.raises(UpstreamError, match="answered HTTP 500") as raised:
        await client.get(f"{fake_upstream.url}/broken")
    assert not isinstance(raised.value, UpstreamUnavailable)
    with pytest.raises(UpstreamError, match="not JSON"):
        (await client.get(f"{fake_upstream.url}/text")).json()


async def test_accept_turns_an_error_status_into_an_answer(client, fake_upstream):
    fake_upstream.reply("POST", "/soap", status=500, body="<Envelope><Fault/></Envelope>")
    response = await client.post(f"{fake_upstream.url}/soap", accept=lambda r: b"Fault" in r.body)
    assert response.status == 500
    assert client.breakers[upstream_of(fake_upstream.url)].consecutive_failures == 0


async def test_answers_larger_than_the_limit_are_refused(fake_upstream):
    fake_upstream.reply("GET", "/big", body="x" * 5000)
    client = HttpClient("test/big", HttpOptions(max_response_size=1000))
    try:
        with pytest.raises(UpstreamError, match="larger than 1000 bytes"):
            await client.get(f"{fake_upstream.url}/big")
    finally:
        await client.close()


# -- logs and metrics ------------------------------------------------------------------


async def test_one_log_line_per_call_without_secrets(fake_upstream):
    fake_upstream.reply("POST", "/accounts/camille@example.org/", json={"pin": "1234", "ok": True})
    client = HttpClient("test/logs", HttpOptions(bearer_token="tok-secret-42"))
    try:
        with capture_logs() as logs:
            await client.post(
                f"{fake_upstream.url.replace('://', '://user:pw-in-url@')}/accounts/camille@example.org/",
                params={"apikey": "key-in-query"},
                json={"password": "pw-in-body", "name": "x" * 5000},
            )
    finally:
        await client.close()
        structlog.reset_defaults()
    calls = [line for line in logs if line["event"] == "upstream call"]
    assert len(calls) == 1
    line = calls[0]
    assert line["log_level"] == "info"
    assert line["instance"] == "test/logs"
    assert line["method"] == "POST"
    assert line["url"].endswith("/accounts/[email]/?apikey=…")
    assert line["status"] == "200"
    assert line["attempt"] == 1
    assert line["duration_ms"] >= 0
    assert line["request_size"] > 5000
    assert line["response_size"] == len(b'{"pin": "1234", "ok": true}')
    # At debug level (structlog's default here), bodies cut and redacted.
    assert len(line["request_body"]) <= 2000
    assert "pw-in-body" not in line["request_body"] and "[secret]" in line["request_body"]
    assert "1234" not in line["response_body"]
    text = repr(logs)
    for secret in ("tok-secret-42", "pw-in-url", "key-in-query", "pw-in-body", "camille@example.org"):
        assert secret not in text


async def test_bodies_stay_out_of_the_logs_above_debug(fake_upstream):
    fake_upstream.reply("GET", "/fail", status=503, body="down for maintenance")
    fake_upstream.reply("GET", "/ok", json={"data": 1})
    client = HttpClient("test/quiet", HttpOptions(retries=0))
    try:
        with capture_logs() as logs:
            structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
            await client.get(f"{fake_upstream.url}/ok")
            with pytest.raises(UpstreamError):
                await client.get(f"{fake_upstream.url}/fail")
    finally:
        await client.close()
        structlog.reset_defaults()
    ok, failed = (line for line in logs if line["event"] == "upstream call")
    assert "response_body" not in ok and "request_body" not in ok
    assert failed["log_level"] == "warning"
    assert failed["status"] == "503"
    assert failed["answer"] == "down for maintenance"  # the start of an error answer, always


def sample_value(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_metrics_per_attempt(fake_upstream):
    fake_upstream.reply("GET", "/m", json={})
    client = HttpClient("test/metrics", HttpOptions())
    upstream = upstream_of(fake_upstream.url)
    before = sample_value("passerelle_upstream_requests_total", instance="test/metrics", host=upstream, status="200")
    try:
        await client.get(f"{fake_upstream.url}/m")
        await client.get(f"{fake_upstream.url}/m")
        after = sample_value("passerelle_upstream_requests_total", instance="test/metrics", host=upstream, status="200")
        assert after - before == 2
        assert sample_value("passerelle_upstream_duration_seconds_count", instance="test/metrics", host=upstream) >= 2
        text = generate_latest(metrics.REGISTRY).decode()
        assert f'passerelle_breaker_state{{instance="test/metrics",upstream="{upstream}"}} 0.0' in text
        assert client in LIVE_CLIENTS
    finally:
        await client.close()
    assert client not in LIVE_CLIENTS
    assert (
        'instance="test/metrics"'
        not in generate_latest(metrics.REGISTRY).decode().split("passerelle_breaker_state")[-1]
    )


# -- TLS and proxy ---------------------------------------------------------------------


def _certificate(subject: str, issuer_key, issuer_name, key, *, ca: bool = False, client: bool = False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A private authority, a server certificate for 127.0.0.1 and a client certificate."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Test CA", None, None, ca_key, ca=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(data)

    write("ca", ca.public_bytes(serialization.Encoding.PEM))
    for name, is_client in (("server", False), ("client", True)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, ca_key, ca.subject, key, client=is_client)
        write(f"{name}-cert", cert.public_bytes(serialization.Encoding.PEM))
        write(
            f"{name}-key",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
    return files


@pytest.fixture
async def tls_server(pki) -> AsyncIterator[tuple[str, list[Any]]]:
    """An HTTPS server that asks for a client certificate (and records the one it got)."""
    seen: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen.append(peer)
        return web.json_response({"tls": True})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    context.load_cert_chain(pki["server-cert"], pki["server-key"])
    context.verify_mode = ssl.CERT_OPTIONAL
    app = web.Application()
    app.router.add_get("/", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    yield str(server.make_url("/")), seen
    await server.close()


async def tls_call(url: str, options: HttpOptions) -> Response:
    client = HttpClient("test/tls", options)
    try:
        return await client.get(url)
    finally:
        await client.close()


async def test_tls_verification_ca_bundle_and_client_certificate(pki, tls_server):
    url, seen = tls_server
    with pytest.raises(UpstreamUnavailable, match="TLS connection to the application failed"):
        await tls_call(url, HttpOptions())  # the system does not trust our authority
    assert (await tls_call(url, HttpOptions(verify_tls=False))).status == 200
    assert (await tls_call(url, HttpOptions(ca_bundle=str(pki["ca"])))).status == 200
    options = HttpOptions(
        ca_bundle=str(pki["ca"]), client_cert=str(pki["client-cert"]), client_key=str(pki["client-key"])
    )
    assert (await tls_call(url, options)).status == 200
    assert seen[:2] == [None, None]
    assert dict(x[0] for x in seen[2]["subject"])["commonName"] == "client"


async def test_tls_verification_failures_are_not_retried(pki, tls_server):
    url, _ = tls_server
    client = HttpClient("test/tls", HttpOptions(retries=2))
    try:
        with pytest.raises(UpstreamUnavailable):
            await client.get(url)
    finally:
        await client.close()
    assert client.breakers[upstream_of(url)].consecutive_failures == 1


async def test_unreadable_tls_files_are_a_configuration_error(tmp_path):
    with pytest.raises(InternalError, match="TLS settings cannot be used"):
        await tls_call("https://127.0.0.1:1/", HttpOptions(ca_bundle=str(tmp_path / "missing.pem")))


async def test_calls_go_through_the_proxy():
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"via": "proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = HttpClient("test/proxy", HttpOptions(proxy=str(server.make_url("/"))))
    try:
        # The target does not exist: only the proxy can answer.
        response = await client.get("http://app.invalid:8000/search?q=x")
        assert response.json() == {"via": "proxy"}
    finally:
        await client.close()
        await server.close()
    assert seen == ["http://app.invalid:8000/search?q=x"]
