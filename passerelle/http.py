"""The one outbound HTTP client of the hub.

Each connector instance gets its own :class:`HttpClient` (``connector.http``),
created on first use and closed with the instance. It sets what aiohttp leaves
implicit: a connection limit, timeouts below the callers' 28 s, and it logs every
call (method, URL without credentials nor query values, status, duration, size;
for a 5xx answer, the start of its body), through :mod:`passerelle.redaction`.
Failures become envelope errors a form can act on::

    connection refused, DNS failure, timeout  -> UpstreamUnavailable (503)
    HTTP 5xx from the application              -> UpstreamError (502)

4xx answers are returned to the connector, which knows what they mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog

from passerelle.envelope import UpstreamError, UpstreamUnavailable
from passerelle.redaction import redact_text

logger = structlog.get_logger("passerelle.http")

__all__ = ["HttpClient", "HttpOptions", "Response", "redact_url"]


@dataclass(frozen=True)
class HttpOptions:
    connect_timeout: float = 5.0
    total_timeout: float = 25.0  # under w.c.s.'s and Combo's 28 s
    max_connections: int = 50
    max_response_size: int = 64 * 1024 * 1024  # a misconfigured URL must not fill the memory
    verify_tls: bool = True
    user_agent: str = "passerelle-hub"


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


# How much of an upstream error answer a log line shows.
ANSWER_EXCERPT = 300


def redact_url(url: str) -> str:
    """The URL as it may appear in a log line: no user-info, no query values, and
    personal data in the path (``/patrons/camille@example.org/``) redacted."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(f"{item.split('=', 1)[0]}=…" for item in parts.query.split("&") if item) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, redact_text(parts.path), query, ""))


def answer_excerpt(body: bytes) -> str:
    """The start of an answer, redacted, for a log line (redacted before it is cut,
    so that the cut never leaves half an email address)."""
    text = body[: ANSWER_EXCERPT * 4].decode("utf-8", errors="replace")
    return redact_text(text)[:ANSWER_EXCERPT]


class HttpClient:
    def __init__(self, name: str, options: HttpOptions | None = None) -> None:
        self.name = name
        self.options = options or HttpOptions()
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.options.max_connections,
                ssl=None if self.options.verify_tls else False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.options.total_timeout, sock_connect=self.options.connect_timeout
                ),
                headers={"User-Agent": self.options.user_agent},
            )
        return self._session

    async def request(self, method: str, url: str, **kwargs: Any) -> Response:
        started = time.perf_counter()
        log = logger.bind(instance=self.name, method=method, url=redact_url(url))
        try:
            async with self.session().request(method, url, **kwargs) as response:
                body = await self._read(response)
        except TimeoutError:
            log.warning("upstream timeout", duration_ms=_ms(started))
            raise UpstreamUnavailable(f"the application did not answer in {self.options.total_timeout:g} s") from None
        except aiohttp.ClientConnectionError as exc:
            log.warning("upstream unreachable", error=type(exc).__name__, duration_ms=_ms(started))
            raise UpstreamUnavailable("the application cannot be reached") from None
        except aiohttp.ClientError as exc:
            log.warning("upstream protocol error", error=type(exc).__name__, duration_ms=_ms(started))
            raise UpstreamError("the application answered with a malformed HTTP response") from None
        if response.status >= 500:
            log.warning(
                "upstream call",
                status=response.status,
                duration_ms=_ms(started),
                size=len(body),
                answer=answer_excerpt(body),
            )
            raise UpstreamError(f"the application answered HTTP {response.status}")
        log.info("upstream call", status=response.status, duration_ms=_ms(started), size=len(body))
        return Response(response.status, response.headers, body, str(response.url))

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

    async def post(self, url: str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
