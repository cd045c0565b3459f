"""SOAP through zeep (passerelle.soap), against a real local SOAP service: an aiohttp
app serving a document/literal WSDL (its types in an included schema) and answering
envelopes, faults included."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Annotated, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from passerelle import APIError, Connector, Param, endpoint, threads
from passerelle.envelope import UpstreamError, UpstreamUnavailable
from passerelle.http import HttpClient, HttpOptions, upstream_of
from passerelle.requestid import CURRENT_REQUEST_ID
from passerelle.soap import HubTransport, SoapClient

NS = "urn:test:greetings"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:tns="urn:test:greetings" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    targetNamespace="urn:test:greetings" name="Greetings">
  <types>
    <xsd:schema targetNamespace="urn:test:greetings" elementFormDefault="qualified">
      <xsd:include schemaLocation="{base}/types.xsd"/>
    </xsd:schema>
  </types>
  <message name="HelloInput"><part name="parameters" element="tns:Hello"/></message>
  <message name="HelloOutput"><part name="parameters" element="tns:HelloResponse"/></message>
  <message name="WaitInput"><part name="parameters" element="tns:Wait"/></message>
  <message name="WaitOutput"><part name="parameters" element="tns:WaitResponse"/></message>
  <portType name="GreetingsPort">
    <operation name="Hello"><input message="tns:HelloInput"/><output message="tns:HelloOutput"/></operation>
    <operation name="Wait"><input message="tns:WaitInput"/><output message="tns:WaitOutput"/></operation>
  </portType>
  <binding name="GreetingsBinding" type="tns:GreetingsPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Hello">
      <soap:operation soapAction="urn:test:greetings#Hello"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
    <operation name="Wait">
      <soap:operation soapAction="urn:test:greetings#Wait"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="GreetingsService">
    <port name="Greetings" binding="tns:GreetingsBinding"><soap:address location="{base}/service"/></port>
  </service>
</definitions>
"""

TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:test:greetings"
    elementFormDefault="qualified">
  <xsd:element name="Hello">
    <xsd:complexType><xsd:sequence><xsd:element name="name" type="xsd:string"/></xsd:sequence></xsd:complexType>
  </xsd:element>
  <xsd:element name="HelloResponse">
    <xsd:complexType><xsd:sequence>
      <xsd:element name="greeting" type="xsd:string"/>
      <xsd:element name="count" type="xsd:int"/>
      <xsd:element name="tags" type="xsd:string" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence></xsd:complexType>
  </xsd:element>
  <xsd:element name="Wait">
    <xsd:complexType><xsd:sequence><xsd:element name="seconds" type="xsd:decimal"/></xsd:sequence></xsd:complexType>
  </xsd:element>
  <xsd:element name="WaitResponse">
    <xsd:complexType><xsd:sequence><xsd:element name="done" type="xsd:boolean"/></xsd:sequence></xsd:complexType>
  </xsd:element>
</xsd:schema>
"""


def envelope(body: str) -> str:
    return f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:tns="{NS}"><soap:Body>{body}</soap:Body></soap:Envelope>'


FAULT = envelope(
    "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>no family with this number</faultstring>"
    "<detail><tns:code>F1</tns:code></detail></soap:Fault>"
)


class SoapService:
    """The SOAP service: ``Hello`` greets (a name starting with 'nobody' gets a Fault),
    ``Wait`` answers after ``seconds``. ``outage`` answers the next POSTs with HTTP 503."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        self.outage = 0
        self.wsdl_status = 200
        self.server: TestServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def wsdl(self, request: web.Request) -> web.Response:
        self.hits["wsdl"] += 1
        if self.wsdl_status != 200:
            return web.Response(status=self.wsdl_status, text="no such thing")
        return web.Response(text=WSDL.replace("{base}", self.base), content_type="text/xml")

    async def types(self, request: web.Request) -> web.Response:
        self.hits["types"] += 1
        return web.Response(text=TYPES, content_type="text/xml")

    async def service(self, request: web.Request) -> web.Response:
        self.hits["post"] += 1
        self.headers.append(dict(request.headers))
        if self.outage:
            self.outage -= 1
            return web.Response(status=503, text="<html>maintenance</html>", content_type="text/html")
        document = etree.fromstring(await request.read())
        (operation,) = document.find(f"{{{SOAP_ENV}}}Body")
        name = etree.QName(operation).localname
        if name == "Hello":
            who = operation.findtext(f"{{{NS}}}name")
            if who.startswith("nobody"):
                return web.Response(status=500, text=FAULT, content_type="text/xml")
            body = (
                f"<tns:HelloResponse><tns:greeting>hello {who}</tns:greeting><tns:count>2</tns:count>"
                "<tns:tags>a</tns:tags><tns:tags>b</tns:tags></tns:HelloResponse>"
            )
        else:
            await asyncio.sleep(float(operation.findtext(f"{{{NS}}}seconds")))
            body = "<tns:WaitResponse><tns:done>true</tns:done></tns:WaitResponse>"
        return web.Response(text=envelope(body), content_type="text/xml")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/service", self.wsdl)
        app.router.add_get("/types.xsd", self.types)
        app.router.add_post("/service", self.service)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def soap_service() -> AsyncIterator[SoapService]:
    service = SoapService()
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient("test/soap", HttpOptions(backoff_base=0.01, backoff_cap=0.02))
    yield client
    await client.close()


async def test_an_operation_gives_plain_data(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    result = await client.call("Hello", name="Camille")
    assert result == {"greeting": "hello Camille", "count": 2, "tags": ["a", "b"]}
    assert type(result) is dict
    assert await client.call("Hello", name="Dominique") == {
        "greeting": "hello Dominique",
        "count": 2,
        "tags": ["a", "b"],
    }
    # The WSDL and its schema were fetched once, through the instance's client.
    assert soap_service.hits == {"wsdl": 1, "types": 1, "post": 2}
    assert http.breakers[upstream_of(soap_service.base)].consecutive_failures == 0
    headers = soap_service.headers[0]
    assert headers["SOAPAction"] == '"urn:test:greetings#Hello"'
    assert headers["User-Agent"] == "passerelle-hub"


async def test_a_fault_is_a_business_error(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    with pytest.raises(APIError) as raised:
        await client.call("Hello", name="nobody-42")
    error = raised.value
    assert type(error) is APIError
    assert error.status == 200
    assert error.message == "no family with this number"
    fault = error.data["soap_fault"]
    assert fault["code"] == "soap:Client"
    assert fault["string"] == "no family with this number"
    assert "F1" in fault["detail"]
    # The application answered: no retry, and it is no failure for the breaker.
    assert soap_service.hits["post"] == 1
    assert http.breakers[upstream_of(soap_service.base)].consecutive_failures == 0


async def test_the_event_loop_stays_free_during_a_slow_call(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    await client.client()
    ticks = 0
    pool_busy = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            pool_busy.append(threads.current_pool().busy)

    running = asyncio.ensure_future(ticker())
    try:
        assert await client.call("Wait", seconds=0.5) is True  # zeep unwraps a one-element answer
    finally:
        running.cancel()
    assert ticks >= 20  # 50 possible: another coroutine progressed all along
    assert max(pool_busy) >= 1  # zeep ran in the pool, not on the loop


async def test_transport_failures_stay_upstream_errors(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    soap_service.outage = 1
    with pytest.raises(UpstreamError, match="answered HTTP 503") as raised:
        await client.call("Hello", name="Camille")
    assert not isinstance(raised.value, UpstreamUnavailable)
    assert soap_service.hits["post"] == 1  # a POST: not repeated
    # A query may be repeated.
    soap_service.outage = 1
    assert (await client.call("Hello", name="Camille", idempotent=True))["greeting"] == "hello Camille"
    assert soap_service.hits["post"] == 3


async def test_an_idempotent_client_default(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl", idempotent=True)
    soap_service.outage = 2
    assert (await client.call("Hello", name="Camille"))["count"] == 2
    assert soap_service.hits["post"] == 3


async def test_an_unreachable_address_is_unavailable(http, soap_service):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SoapClient(http, f"{soap_service.base}/service?wsdl", address=f"http://127.0.0.1:{port}/service")
    with pytest.raises(UpstreamUnavailable, match="cannot be reached"):
        await client.call("Hello", name="Camille")
    assert http.breakers[f"http://127.0.0.1:{port}"].consecutive_failures == 1


async def test_soap_calls_keep_the_client_deadline(soap_service):
    http = HttpClient("test/soap-slow", HttpOptions(total_timeout=0.5))
    try:
        client = SoapClient(http, f"{soap_service.base}/service?wsdl")
        await client.client()
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamUnavailable, match=r"did not answer in 0\.5 s"):
            async with asyncio.timeout(4):
                await client.call("Wait", seconds=3)
        assert asyncio.get_running_loop().time() - started < 1.5
    finally:
        await http.close()


async def test_a_missing_wsdl_is_an_upstream_error_and_is_fetched_again(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    soap_service.wsdl_status = 404
    with pytest.raises(UpstreamError, match=r"description .* answered HTTP 404"):
        await client.call("Hello", name="Camille")
    soap_service.wsdl_status = 200
    assert (await client.call("Hello", name="Camille"))["count"] == 2
    assert soap_service.hits["wsdl"] == 2


async def test_the_request_id_goes_with_soap_calls(http, soap_service):
    client = SoapClient(http, f"{soap_service.base}/service?wsdl")
    token = CURRENT_REQUEST_ID.set("feedfacefeedfacefeedfacefeedface")
    try:
        await client.call("Hello", name="Camille")
    finally:
        CURRENT_REQUEST_ID.reset(token)
    assert soap_service.headers[-1]["X-Request-ID"] == "feedfacefeedfacefeedfacefeedface"


async def test_zeep_never_runs_on_the_event_loop(http):
    transport = HubTransport(http, asyncio.get_running_loop())
    with pytest.raises(RuntimeError, match="must not run on the event loop"):
        transport.load("http://127.0.0.1:1/service?wsdl")


# -- through the hub --------------------------------------------------------------------


class FamiliesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wsdl_url: str = Field(description="URL of the service's WSDL.")


class Families(Connector):
    slug = "families"
    title = "Families"
    description = "A SOAP service."
    Config = FamiliesConfig

    @cached_property
    def soap(self) -> SoapClient:
        return SoapClient(self.http, self.config.wsdl_url, idempotent=True)

    @endpoint(description="Greets.")
    async def hello(self, name: Annotated[str, Param("Name", example="Camille")]) -> Any:
        return await self.soap.call("Hello", name=name)


@pytest.fixture
def hub_connector_types(hub_connector_types):
    return {**hub_connector_types, "families": Families}


async def test_through_the_hub(hub_client, make_instance, soap_service):
    await make_instance("families", "demo", config={"wsdl_url": f"{soap_service.base}/service?wsdl"})
    response = await hub_client.get("/families/demo/hello?name=Camille")
    assert response.status == 200
    assert await response.json() == {"err": 0, "data": {"greeting": "hello Camille", "count": 2, "tags": ["a", "b"]}}
    request_id = response.headers["X-Request-ID"]
    assert soap_service.headers[-1]["X-Request-ID"] == request_id

    response = await hub_client.get("/families/demo/hello?name=nobody")
    assert response.status == 200
    payload = await response.json()
    assert payload["err"] == 1
    assert payload["err_class"] == "passerelle.envelope.APIError"
    assert payload["err_desc"] == "no family with this number"
    assert payload["data"]["soap_fault"]["code"] == "soap:Client"

    soap_service.outage = 5
    response = await hub_client.get("/families/demo/hello?name=Camille")
    assert response.status == 502
    assert (await response.json())["err_class"] == "passerelle.envelope.UpstreamError"
    assert soap_service.hits["wsdl"] == 1
