"""The one outbound HTTP client of the hub.

Each connector instance gets its own :class:`HttpClient` (``connector.http``),
created on first use and closed with the instance. It sets what aiohttp leaves
implicit and adds what a hub in front of fragile applications needs (the guide is
``docs/outbound-calls.md``):

- **limits**: ``max_connections`` in all and per host (never aiohttp's implicit 100);
- **timeouts**: connect, read, and a total deadline (25 s, under the callers' 28 s)
  that covers the whole call, retries and their waits included;
- **TLS, proxy, authentication, default headers** from :class:`HttpOptions`, which a
  connector derives from its configuration (:class:`HttpConfig` for per-instance
  overrides);
- **retries** of idempotent calls (GET, HEAD, OPTIONS, PUT, DELETE, or
  ``idempotent=True``) on connection errors, timeouts, HTTP 5xx and 429, with
  exponential backoff and full jitter; ``Retry-After`` is honoured up to a cap;
- **a circuit breaker per upstream** (``scheme://host:port``, :mod:`passerelle.breaker`);
- **logs**: one line per attempt (method, URL without credentials nor query values,
  status or failure, duration, sizes, attempt); bodies at debug level, cut and redacted;
- **metrics**: ``passerelle_upstream_requests`` and ``passerelle_upstream_duration_seconds``
  per attempt, ``passerelle_breaker_state`` per upstream;
- **the request id** in ``X-Request-ID``.

Failures become envelope errors a form can act on::

    connection refused, DNS failure, timeout, reset  -> UpstreamUnavailable (503)
    HTTP 429, or a Retry-After too long to wait       -> UpstreamUnavailable (503)
    breaker open                                     -> BreakerOpen (503)
    HTTP 5xx from the application                    -> UpstreamError (502)
    malformed or too large an answer                 -> UpstreamError (502)

4xx answers (but 429) are returned to the connector, which knows what they mean.
"""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import logging
import random
import ssl
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog
from multidict import CIMultiDict
from prometheus_client.core import Metric
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from yarl import URL

from passerelle import metrics
from passerelle.breaker import CircuitBreaker, Permit
from passerelle.envelope import BreakerOpen, HubError, InternalError, UpstreamError, UpstreamUnavailable
from passerelle.ratelimit import RateLimiter
from passerelle.redaction import SECRET, classify_key, redact_text
from passerelle.requestid import REQUEST_ID_HEADER, current_request_id

logger = structlog.get_logger("passerelle.http")

__all__ = [
    "IDEMPOTENT_METHODS",
    "LIVE_CLIENTS",
    "HttpClient",
    "HttpConfig",
    "HttpOptions",
    "Response",
    "options_from_config",
    "redact_url",
    "upstream_of",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# How much of an upstream error answer a log line shows, and of bodies at debug level.
ANSWER_EXCERPT = 300
BODY_EXCERPT = 2000

# The names of the configuration fields holding the client's secrets: they are
# top-level fields of a connector's Config (the hub finds, encrypts and hides
# top-level SecretStr fields only), next to its ``http: HttpConfig`` field.
PASSWORD_FIELD = "http_password"
BEARER_TOKEN_FIELD = "http_bearer_token"


@dataclass(frozen=True)
class HttpOptions:
    """What a client does; a connector derives it from its configuration in
    ``Connector.http_options()``. Durations are in seconds."""

    connect_timeout: float = 5.0
    read_timeout: float | None = 20.0  # longest silence while waiting for or reading an answer
    total_timeout: float = 25.0  # the whole call, retries included: under w.c.s.'s and Combo's 28 s
    max_connections: int = 50
    max_connections_per_host: int = 50
    max_response_size: int = 64 * 1024 * 1024  # a misconfigured URL must not fill the memory
    verify_tls: bool = True
    ca_bundle: str | None = None  # a PEM file of trusted authorities, instead of the system's
    client_cert: str | None = None  # a PEM certificate (with its key, or the key in client_key)
    client_key: str | None = None
    proxy: str | None = None
    username: str | None = None  # HTTP Basic, with password
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = "passerelle-hub"
    retries: int = 2  # extra attempts of an idempotent call
    backoff_base: float = 0.2  # the n-th retry waits a random time in [0, min(cap, base * 2**(n-1))]
    backoff_cap: float = 2.0
    retry_after_cap: float = 10.0  # a longer Retry-After fails at once, saying when to retry
    breaker_threshold: int = 5  # consecutive failures that open an upstream's breaker (0: never)
    breaker_open_duration: float = 30.0  # before a probe call goes through
    rate_limit: float | None = None  # most calls per second to one upstream, from this process (passerelle.ratelimit)

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "total_timeout", "breaker_open_duration"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpOptions.{name} must be positive")
        if self.read_timeout is not None and not self.read_timeout > 0:
            raise ValueError("HttpOptions.read_timeout must be positive (or None)")
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise ValueError("HttpOptions.rate_limit must be positive (or None)")
        for name in ("max_connections", "max_connections_per_host", "max_response_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpOptions.{name} must be at least 1 (there is no 'unlimited')")
        for name in ("retries", "backoff_base", "backoff_cap", "retry_after_cap", "breaker_threshold"):
            if getattr(self, name) < 0:
                raise ValueError(f"HttpOptions.{name} cannot be negative")
        if self.bearer_token and (self.username or self.password):
            raise ValueError("HttpOptions: Basic credentials and a bearer token exclude each other")
        if self.client_key and not self.client_cert:
            raise ValueError("HttpOptions.client_key needs client_cert")


class HttpConfig(BaseModel):
    """Per-instance overrides of the outbound client, as a field of a connector's Config::

        class Config(BaseModel):
            url: HttpUrl = Field(description="…")
            http: HttpConfig = Field(default_factory=HttpConfig, description="Calls to the application.")
            http_password: SecretStr | None = Field(None, description="HTTP Basic password.")
            http_bearer_token: SecretStr | None = Field(None, description="Bearer token.")

    Secrets (the Basic password, a bearer token) are not in this model: the hub encrypts
    and hides top-level ``SecretStr`` fields only, so they are the Config's own
    ``http_password`` and ``http_bearer_token`` fields, which ``Connector.http_options()``
    reads too. Fields left out keep the connector's defaults.
    """

    model_config = ConfigDict(extra="forbid")

    timeout: float | None = Field(
        None,
        gt=0,
        le=600,
        description=(
            "Seconds a call may take in all, retries included (default 25). Above 28, w.c.s. and "
            "Combo give up before the hub does."
        ),
    )
    retries: int | None = Field(
        None, ge=0, le=10, description="Extra attempts of a call that can be repeated safely (default 2)."
    )
    rate_limit: float | None = Field(
        None,
        gt=0,
        le=10000,
        description=(
            "Most calls per second to the application from one hub process; calls beyond wait "
            "for their turn (default: the connector's, often none)."
        ),
    )
    verify_tls: bool = Field(True, description="Check the application's TLS certificate.")
    ca_bundle: str | None = Field(
        None, description="Path of a PEM file of the authorities to trust, instead of the system's."
    )
    client_cert: str | None = Field(None, description="Path of the PEM client certificate (TLS authentication).")
    client_key: str | None = Field(None, description="Path of the client certificate's key, if not in its file.")
    proxy: str | None = Field(None, description="URL of the HTTP proxy to go through (without credentials).")
    username: str | None = Field(
        None, description="HTTP Basic user name (the password is the secret field 'http_password')."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with every call (no credentials here: they would be stored in clear).",
    )

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if classify_key(name) == SECRET:
                raise ValueError(
                    f"the header '{name}' carries a credential: headers are stored in clear; use the secret "
                    f"fields '{BEARER_TOKEN_FIELD}' or '{PASSWORD_FIELD}', or a secret field of the connector"
                )
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the proxy is an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("the proxy URL cannot hold credentials (they would be stored in clear)")
        return value


def options_from_config(config: BaseModel, base: HttpOptions | None = None) -> HttpOptions:
    """``base`` (default ``HttpOptions()``) with the overrides of the Config's ``http``
    field (:class:`HttpConfig`) and its ``http_password`` / ``http_bearer_token`` secrets."""
    base = base or HttpOptions()
    changes: dict[str, Any] = {}
    http = getattr(config, "http", None)
    if isinstance(http, HttpConfig):
        chosen = http.model_fields_set
        if "timeout" in chosen and http.timeout is not None:
            changes["total_timeout"] = http.timeout
            changes["connect_timeout"] = min(base.connect_timeout, http.timeout)
            if base.read_timeout is not None:
                changes["read_timeout"] = min(base.read_timeout, http.timeout)
        if "retries" in chosen and http.retries is not None:
            changes["retries"] = http.retries
        if "rate_limit" in chosen and http.rate_limit is not None:
            changes["rate_limit"] = http.rate_limit
        for name in ("verify_tls", "ca_bundle", "client_cert", "client_key", "proxy", "username"):
            if name in chosen:
                changes[name] = getattr(http, name)
        if http.headers:
            changes["headers"] = {**base.headers, **http.headers}
    password = _secret(getattr(config, PASSWORD_FIELD, None))
    token = _secret(getattr(config, BEARER_TOKEN_FIELD, None))
    if password is not None:
        changes["password"] = password
    if token is not None:
        changes["bearer_token"] = token
    return replace(base, **changes) if changes else base


def _secret(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value() or None
    return None


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes
    url: str

    def json(self) -> Any:
        import orjson

        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"the application answered something that is not JSON (HTTP {self.status})") from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def redact_url(url: str) -> str:
    """The URL as it may appear in a log line: no user-info, no query values, and
    personal data in the path (``/patrons/camille@example.org/``) redacted."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(f"{item.split('=', 1)[0]}=…" for item in parts.query.split("&") if item) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, redact_text(parts.path), query, ""))


def answer_excerpt(body: bytes, limit: int = ANSWER_EXCERPT) -> str:
    """The start of a body, redacted, for a log line (redacted before it is cut,
    so that the cut never leaves half an email address)."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    return redact_text(text)[:limit]


def upstream_of(url: str | URL) -> str:
    """The key of an upstream, for its breaker and its metrics: ``scheme://host:port``."""
    parsed = url if isinstance(url, URL) else URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UpstreamError(f"cannot call {redact_url(str(url))}: not an http(s) URL")
    assert parsed.port is not None  # yarl gives http(s)'s default port
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}:{parsed.port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


# Every client not closed, for the breaker-state gauge.
LIVE_CLIENTS: weakref.WeakSet[HttpClient] = weakref.WeakSet()


@dataclass
class _Attempt:
    """What one attempt gave: a response, or an error with its metric label."""

    label: str  # the HTTP status, 'timeout', 'unreachable' or 'invalid'
    response: Response | None = None
    error: HubError | None = None
    failure: bool = False  # counts against the breaker
    retryable: bool = False
    retry_after: float | None = None
    duration: float = 0.0


class HttpClient:
    def __init__(self, name: str, options: HttpOptions | None = None) -> None:
        self.name = name
        self.options = options or HttpOptions()
        self._session: aiohttp.ClientSession | None = None
        self.breakers: dict[str, CircuitBreaker] = {}
        self.limiters: dict[str, RateLimiter] = {}
        LIVE_CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"<HttpClient {self.name}>"

    # -- breakers ------------------------------------------------------------

    def breaker(self, upstream: str) -> CircuitBreaker:
        found = self.breakers.get(upstream)
        if found is None:
            found = self.breakers[upstream] = CircuitBreaker(
                self.name,
                upstream,
                threshold=self.options.breaker_threshold,
                open_duration=self.options.breaker_open_duration,
            )
        return found

    def limiter(self, upstream: str) -> RateLimiter | None:
        if self.options.rate_limit is None:
            return None
        found = self.limiters.get(upstream)
        if found is None:
            found = self.limiters[upstream] = RateLimiter(self.options.rate_limit)
        return found

    def breaker_states(self) -> list[dict[str, Any]]:
        return [b.snapshot() for _, b in sorted(self.breakers.items())]

    def reset_breakers(self, upstream: str | None = None) -> list[dict[str, Any]]:
        """Close this client's breakers (or the one of ``upstream``)."""
        for key, found in self.breakers.items():
            if upstream is None or key == upstream:
                found.reset()
        return self.breaker_states()

    # -- the session ---------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            options = self.options
            connector = aiohttp.TCPConnector(
                limit=options.max_connections,
                limit_per_host=options.max_connections_per_host,
                ssl=self._ssl(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=options.connect_timeout, sock_read=options.read_timeout
                ),
                headers={"User-Agent": options.user_agent},
            )
            # aiohttp silently sends an idempotent request again when the connection drops;
            # the retries are ours, counted and logged (and the drills count them).
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    def _ssl(self) -> ssl.SSLContext | bool:
        options = self.options
        if not options.verify_tls:
            return False
        if not (options.ca_bundle or options.client_cert):
            return True
        try:
            context = ssl.create_default_context(cafile=options.ca_bundle)
            if options.client_cert:
                context.load_cert_chain(options.client_cert, options.client_key)
        except (OSError, ssl.SSLError) as exc:
            logger.error(
                "the instance's TLS settings cannot be used",
                instance=self.name,
                ca_bundle=options.ca_bundle,
                client_cert=options.client_cert,
                client_key=options.client_key,
                error=str(exc),
            )
            raise InternalError("the instance's TLS settings cannot be used (see the logs)") from None
        return context

    # -- calls ---------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        accept: Callable[[Response], bool] | None = None,
        **kwargs: Any,
    ) -> Response:
        """One call, with aiohttp's keyword arguments (``params=``, ``json=``, ``data=``,
        ``headers=``…). ``idempotent`` says whether it may be repeated (default: by
        method); ``retries`` overrides the options' extra attempts; ``timeout`` the total
        deadline of this call; ``accept(response)`` true for an HTTP 5xx or 429 makes it
        an answer (a SOAP fault comes as HTTP 500), returned and not retried."""
        method = method.upper()
        options = self.options
        if isinstance(timeout, aiohttp.ClientTimeout):
            timeout = timeout.total
        total = options.total_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + total
        parsed = URL(url)
        upstream = upstream_of(parsed)
        breaker = self.breaker(upstream)
        limiter = self.limiter(upstream)
        body, replayable, is_json = _prepare_body(kwargs)
        explicit_auth = kwargs.get("auth") is not None or parsed.user is not None
        kwargs["headers"] = self._headers(kwargs.get("headers"), explicit_auth=explicit_auth, is_json=is_json)
        kwargs.setdefault("proxy", options.proxy)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        extra = (options.retries if retries is None else retries) if idempotent and replayable else 0
        attempts = 1 + max(0, extra)
        log_url = redact_url(_full_url(url, kwargs.get("params")))
        log = logger.bind(instance=self.name, method=method, url=log_url)
        debug = _debug_enabled()
        last: _Attempt | None = None
        for attempt in range(1, attempts + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if limiter is not None:
                await limiter.wait(remaining)
            try:
                permit = breaker.acquire()
            except BreakerOpen:
                metrics.UPSTREAM_REQUESTS.labels(self.name, upstream, "breaker_open").inc()
                log.info("upstream call", status="breaker_open", attempt=attempt, duration_ms=0.0)
                if last is not None and last.error is not None:
                    raise last.error from None
                raise
            last = await self._attempt(method, url, kwargs, breaker, permit, deadline, total, accept, loop)
            metrics.UPSTREAM_REQUESTS.labels(self.name, upstream, last.label).inc()
            metrics.UPSTREAM_DURATION.labels(self.name, upstream).observe(last.duration)
            if limiter is not None and last.retry_after is not None and last.label == "429":
                limiter.pause(last.retry_after)
            wait = self._wait_before_retry(last, attempt, attempts, deadline - loop.time())
            self._log(log, last, attempt, body, debug, wait)
            if last.error is None:
                assert last.response is not None
                return last.response
            if wait is None:
                raise last.error
            await asyncio.sleep(wait)
        if last is not None and last.error is not None:
            raise last.error
        raise UpstreamUnavailable(f"the application did not answer in {total:g} s")

    async def _attempt(
        self,
        method: str,
        url: str,
        kwargs: dict[str, Any],
        breaker: CircuitBreaker,
        permit: Permit,
        deadline: float,
        total: float,
        accept: Callable[[Response], bool] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Attempt:
        started = loop.time()
        outcome: _Attempt
        try:
            async with asyncio.timeout_at(deadline):
                async with self.session().request(method, url, **kwargs) as answer:
                    body = await self._read(answer)
                    response = Response(answer.status, answer.headers, body, str(answer.url))
        except asyncio.CancelledError:
            breaker.released(permit)
            raise
        except TimeoutError as exc:
            outcome = _Attempt("timeout", error=self._timeout_error(exc, loop.time() >= deadline, total), failure=True)
            outcome.retryable = True
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            outcome = _Attempt(
                "unreachable",
                error=UpstreamUnavailable(f"the TLS connection to the application failed ({type(exc).__name__})"),
                failure=True,
            )
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            outcome = _Attempt("unreachable", error=_connection_error(exc), failure=True, retryable=True)
        except aiohttp.ClientError as exc:
            outcome = _Attempt(
                "invalid",
                error=UpstreamError(f"the application answered with a malformed HTTP response ({type(exc).__name__})"),
            )
        except HubError as exc:  # the answer is too large
            outcome = _Attempt("invalid", error=exc)
        except BaseException:
            breaker.released(permit)
            raise
        else:
            outcome = self._judge(response, accept)
        outcome.duration = loop.time() - started
        if outcome.failure:
            breaker.failed(permit)
        elif outcome.error is None:
            breaker.succeeded(permit)
        else:
            breaker.released(permit)  # an answer that says nothing of the application's health
        return outcome

    def _judge(self, response: Response, accept: Callable[[Response], bool] | None) -> _Attempt:
        status = response.status
        if (status >= 500 or status == 429) and not (accept is not None and accept(response)):
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
            if status == 429:
                error: HubError = UpstreamUnavailable("the application is overloaded (HTTP 429)")
            else:
                error = UpstreamError(f"the application answered HTTP {status}")
            return _Attempt(
                str(status), response=response, error=error, failure=True, retryable=True, retry_after=retry_after
            )
        return _Attempt(str(status), response=response)

    def _wait_before_retry(self, outcome: _Attempt, attempt: int, attempts: int, remaining: float) -> float | None:
        """Seconds to wait before the next attempt, None for no next attempt. A Retry-After
        that cannot be honoured turns the error into one saying when to retry."""
        if outcome.error is None:
            return None
        retry_after = outcome.retry_after
        if retry_after is not None and (
            retry_after > self.options.retry_after_cap or retry_after >= remaining or attempt >= attempts
        ):
            status = outcome.response.status if outcome.response is not None else "?"
            at = datetime.fromtimestamp(time.time() + retry_after, UTC).strftime("%H:%M:%S UTC")
            outcome.error = UpstreamUnavailable(
                f"the application is unavailable (HTTP {status}) and asks to be called again in "
                f"{retry_after:.0f} s, at {at}"
            )
            return None
        if not outcome.retryable or attempt >= attempts:
            return None
        if retry_after is not None:
            return retry_after
        ceiling = min(self.options.backoff_cap, self.options.backoff_base * 2 ** (attempt - 1))
        wait = random.uniform(0, ceiling)
        return wait if wait < remaining else None

    def _timeout_error(self, exc: TimeoutError, deadline_reached: bool, total: float) -> UpstreamUnavailable:
        if not deadline_reached and isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamUnavailable(
                f"the application did not accept a connection in {self.options.connect_timeout:g} s"
            )
        if not deadline_reached and isinstance(exc, aiohttp.SocketTimeoutError) and self.options.read_timeout:
            return UpstreamUnavailable(f"the application sent nothing for {self.options.read_timeout:g} s")
        return UpstreamUnavailable(f"the application did not answer in {total:g} s")

    def _headers(self, given: Any, *, explicit_auth: bool, is_json: bool) -> CIMultiDict[str]:
        options = self.options
        headers: CIMultiDict[str] = CIMultiDict(options.headers)
        if options.bearer_token:
            headers["Authorization"] = f"Bearer {options.bearer_token}"
        elif options.username is not None or options.password:
            headers["Authorization"] = _basic(options.username or "", options.password or "")
        if explicit_auth:  # auth= or credentials in the URL: aiohttp refuses a second Authorization
            headers.popall("Authorization", None)
        rid = current_request_id()
        if rid:
            headers[REQUEST_ID_HEADER] = rid
        if given:
            items = list(given.items() if hasattr(given, "items") else given)
            for key, _ in items:  # a caller's header replaces the default
                headers.popall(key, None)
            for key, value in items:
                headers.add(key, value)
        if is_json and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        return headers

    def _log(
        self, log: Any, outcome: _Attempt, attempt: int, body: bytes | None, debug: bool, wait: float | None
    ) -> None:
        fields: dict[str, Any] = {
            "status": outcome.label,
            "attempt": attempt,
            "duration_ms": round(outcome.duration * 1000, 1),
            "request_size": len(body) if body is not None else None,
        }
        response = outcome.response
        if response is not None:
            fields["response_size"] = len(response.body)
        if outcome.error is not None and outcome.label in ("timeout", "unreachable", "invalid"):
            fields["error"] = outcome.error.message
        if wait is not None:
            fields["retry_in_ms"] = round(wait * 1000, 1)
        if debug:
            if body:
                fields["request_body"] = answer_excerpt(body, BODY_EXCERPT)
            if response is not None and response.body:
                fields["response_body"] = answer_excerpt(response.body, BODY_EXCERPT)
        if outcome.failure or outcome.label == "invalid":
            if response is not None and response.status >= 500 and not debug:
                fields["answer"] = answer_excerpt(response.body)
            log.warning("upstream call", **fields)
        else:
            log.info("upstream call", **fields)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.options.max_response_size
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamError(f"the application's answer is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"the application's answer is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def get(self, url: str, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def close(self) -> None:
        LIVE_CLIENTS.discard(self)
        if self._session is not None:
            await self._session.close()
            self._session = None


def _prepare_body(kwargs: dict[str, Any]) -> tuple[bytes | None, bool, bool]:
    """Serialise a ``json=`` body once (as aiohttp would), so that it can be sent again,
    measured and logged. Returns the body's bytes (when known), whether the call can
    be repeated (a stream cannot) and whether the body is JSON."""
    is_json = False
    if "json" in kwargs:
        payload = kwargs.pop("json")
        if payload is not None:
            if kwargs.get("data") is not None:
                raise ValueError("data and json parameters can not be used at the same time")
            kwargs["data"] = jsonlib.dumps(payload).encode("utf-8")
            is_json = True
    data = kwargs.get("data")
    if data is None:
        return None, True, is_json
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), True, is_json
    if isinstance(data, str):
        return data.encode("utf-8"), True, is_json
    if isinstance(data, Mapping) or (isinstance(data, (list, tuple)) and all(isinstance(i, tuple) for i in data)):
        return None, True, is_json  # a form, encoded by aiohttp each time
    return None, False, is_json


def _full_url(url: str, params: Any) -> str:
    if not params:
        return url
    try:
        return str(URL(url).extend_query(params))
    except (TypeError, ValueError):
        return url


def _basic(username: str, password: str) -> str:
    encode = getattr(aiohttp, "encode_basic_auth", None)  # aiohttp >= 3.14; BasicAuth is deprecated there
    if encode is not None:
        return str(encode(username, password))
    return aiohttp.BasicAuth(username, password).encode()


def _connection_error(exc: Exception) -> UpstreamUnavailable:
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamUnavailable("the application cut the connection in the middle of its answer")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamUnavailable("the application closed the connection without answering")
    return UpstreamUnavailable("the application cannot be reached")


def _debug_enabled() -> bool:
    check = getattr(logger, "is_enabled_for", None)
    if check is None:
        return False
    try:
        return bool(check(logging.DEBUG))
    except Exception:
        return False


def _breaker_states() -> Iterable[Metric]:
    family = metrics.gauge(
        "passerelle_breaker_state",
        "Circuit breaker of each upstream of each instance: 0 closed, 1 half-open, 2 open.",
        ["instance", "upstream"],
    )
    for client in list(LIVE_CLIENTS):
        for upstream, found in list(client.breakers.items()):
            family.add_metric([client.name, upstream], int(found.state))
    yield family


metrics.register_state_collector("breakers", _breaker_states)
