"""SOAP through zeep, with the instance's HTTP client underneath.

::

    client = SoapClient(self.http, self.config.wsdl_url)
    invoice = await client.call("GetInvoice", reference="F-2026-001", idempotent=True)

zeep is synchronous: it runs in the bounded thread pool (:func:`passerelle.threads.run_sync`)
and its transport hands every HTTP request (the WSDL and its schemas, then each
operation) back to the event loop, to ``HttpClient.request``. A SOAP call thus gets
the instance's timeouts, retries, circuit breaker, connection limits, TLS options,
logs and metrics, and never blocks the event loop: while zeep waits for an answer,
only its pool thread waits.

- The WSDL is loaded once per :class:`SoapClient` (keep the client, e.g. in a
  ``functools.cached_property`` of the connector); a failed load is tried again on the
  next call.
- Operations are POSTs, not repeated unless the call says ``idempotent=True`` (a query).
- A SOAP Fault is a business answer: :class:`~passerelle.envelope.APIError` (HTTP 200,
  ``err: 1``) with the fault string, ``data["soap_fault"]`` holding its code, string,
  actor and detail (as XML text); the ``zeep.exceptions.Fault`` is its ``__cause__``.
  It counts as a success for the breaker.
- A transport failure stays what the HTTP client raised (``UpstreamError``,
  ``UpstreamUnavailable``, ``BreakerOpen``); an answer that is not a SOAP envelope is
  an ``UpstreamError``.
- Results are plain Python data (``zeep.helpers.serialize_object`` to dicts and lists).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.proxy
import zeep.transports
from lxml import etree

from passerelle.envelope import APIError, UpstreamError
from passerelle.http import HttpClient, Response, redact_url
from passerelle.threads import run_sync

logger = structlog.get_logger("passerelle.soap")

__all__ = ["HubTransport", "SoapClient"]

T = TypeVar("T")

# The options of the operation being called, set by SoapClient.call and read by the
# transport in the pool thread (run_sync copies the context into it).
_CALL_IDEMPOTENT: contextvars.ContextVar[bool] = contextvars.ContextVar("passerelle_soap_idempotent", default=False)

# Seconds a pool thread waits for the event loop beyond the HTTP client's own deadline.
LOOP_SLACK = 5.0


def is_soap_fault(response: Response) -> bool:
    """A SOAP fault comes as HTTP 500: an answer of the application, not a failure."""
    return response.status == 500 and b"Fault" in response.body and b"Envelope" in response.body


@dataclass
class _Reply:
    """What zeep reads of a ``requests.Response``."""

    status_code: int
    content: bytes
    headers: Any
    encoding: str | None = None


class _Documents:
    """zeep's cache interface, per client: the WSDL and schemas already loaded."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}

    def get(self, url: str) -> bytes | None:
        return self.documents.get(url)

    def add(self, url: str, content: bytes) -> None:
        self.documents[url] = content


class HubTransport(zeep.transports.Transport):
    """A zeep transport sending every HTTP request through an :class:`HttpClient` on the
    event loop. Its methods run in a pool thread, never on the loop."""

    def __init__(self, http: HttpClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(cache=_Documents(), timeout=http.options.total_timeout)
        self.http = http
        self.loop = loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coroutine.close()
            raise RuntimeError("zeep must not run on the event loop: use `await SoapClient.call(...)`")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout=self.http.options.total_timeout + LOOP_SLACK)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise UpstreamError("the SOAP call did not finish in time") from None

    def _load_remote_data(self, url: str) -> bytes:
        if urlsplit(url).scheme not in ("http", "https"):
            return super()._load_remote_data(url)  # file:// documents shipped with a connector
        response = self._run(self.http.get(url))
        if response.status != 200:
            raise UpstreamError(f"the SOAP service's description {redact_url(url)} answered HTTP {response.status}")
        return response.body

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> _Reply:
        data = message.encode("utf-8") if isinstance(message, str) else message
        response = self._run(
            self.http.post(address, data=data, headers=headers, idempotent=_CALL_IDEMPOTENT.get(), accept=is_soap_fault)
        )
        return _Reply(response.status, response.body, response.headers)

    def get(self, address: str, params: dict[str, Any], headers: dict[str, str]) -> _Reply:
        response = self._run(self.http.get(address, params=params, headers=headers))
        return _Reply(response.status, response.body, response.headers)


class SoapClient:
    """A SOAP service described by a WSDL, called through ``http`` (the instance's client).

    ``service``/``port`` choose among the WSDL's services (default: the first);
    ``address`` replaces the endpoint address the WSDL gives (a WSDL often names the
    vendor's test server); ``idempotent`` is the default of :meth:`call`;
    ``settings`` are zeep's (``zeep.Settings(strict=False)`` for lax services).
    """

    def __init__(
        self,
        http: HttpClient,
        wsdl: str,
        *,
        service: str | None = None,
        port: str | None = None,
        address: str | None = None,
        idempotent: bool = False,
        settings: zeep.Settings | None = None,
    ) -> None:
        self.http = http
        self.wsdl = wsdl
        self.service_name = service
        self.port_name = port
        self.address = address
        self.idempotent = idempotent
        self.settings = settings
        self._client: zeep.Client | None = None
        self._service: Any = None
        self._lock: asyncio.Lock | None = None

    async def client(self) -> zeep.Client:
        """The zeep client, its WSDL loaded once (in the pool, through the HTTP client)."""
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                transport = HubTransport(self.http, asyncio.get_running_loop())
                client = await run_sync(self._build, transport)
                self._service = self._bind(client)
                self._client = client
        return self._client

    def _build(self, transport: HubTransport) -> zeep.Client:
        try:
            return zeep.Client(
                self.wsdl,
                transport=transport,
                service_name=self.service_name,
                port_name=self.port_name,
                settings=self.settings,
            )
        except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError, etree.XMLSyntaxError) as exc:
            raise UpstreamError(f"the SOAP service's description is not valid XML: {_first_line(exc)}") from None
        except zeep.exceptions.WsdlSyntaxError as exc:
            raise UpstreamError(f"the SOAP service's description is not a valid WSDL: {_first_line(exc)}") from None

    def _bind(self, client: zeep.Client) -> Any:
        service = client.bind(self.service_name, self.port_name) if self.service_name else client.service
        if self.address:
            service = zeep.proxy.ServiceProxy(
                client, service._binding, **{**service._binding_options, "address": self.address}
            )
        return service

    async def call(self, operation: str, *args: Any, idempotent: bool | None = None, **kwargs: Any) -> Any:
        """Call ``operation`` with zeep's arguments; returns plain Python data."""
        client = await self.client()
        client.transport.loop = asyncio.get_running_loop()
        token = _CALL_IDEMPOTENT.set(self.idempotent if idempotent is None else idempotent)
        try:
            return await run_sync(self._call, operation, args, kwargs)
        finally:
            _CALL_IDEMPOTENT.reset(token)

    def _call(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method = getattr(self._service, operation)
        try:
            result = method(*args, **kwargs)
        except zeep.exceptions.Fault as fault:
            logger.info("soap fault", instance=self.http.name, operation=operation, code=_text(fault.code))
            raise APIError(fault.message or "the SOAP service answered with a fault", data=fault_data(fault)) from fault
        except zeep.exceptions.TransportError as exc:
            raise UpstreamError(
                f"the SOAP service answered HTTP {exc.status_code} without a SOAP envelope"
                if exc.status_code
                else "the SOAP service answered without a SOAP envelope"
            ) from None
        except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError) as exc:
            raise UpstreamError(f"the SOAP service answered something that is not XML: {_first_line(exc)}") from None
        return zeep.helpers.serialize_object(result, target_cls=dict)


def fault_data(fault: zeep.exceptions.Fault) -> dict[str, Any]:
    detail = None
    if fault.detail is not None:
        detail = etree.tostring(fault.detail, encoding="unicode")
    return {
        "soap_fault": {
            "code": _text(fault.code),
            "string": fault.message,
            "actor": fault.actor,
            "detail": detail,
        }
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.text if isinstance(value, etree.QName) else str(value)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
