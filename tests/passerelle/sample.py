"""A connector type exercising every feature of the framework, for the core's tests."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from passerelle import PUBLIC, APIError, Connector, Context, Param, Result, endpoint, periodic


class SampleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = Field("hello", description="Word put before names.")
    password: SecretStr | None = Field(None, description="A secret the sample never shows.")
    limit: int = Field(10, ge=1, description="Largest page size.")
    upstream_url: str = Field("", description="Base URL of the application the cached endpoints ask.")


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="Full name.")
    age: int = Field(ge=0, description="Age in years.")


class Sample(Connector):
    slug = "sample"
    title = "Sample"
    category = "Tests"
    description = "Exercises the framework."
    Config = SampleConfig

    @endpoint(description="Greets someone.", display_category="Greetings", display_order=1)
    async def hello(
        self,
        name: Annotated[str, Param("Who to greet", example="Camille")],
        times: Annotated[int, Param("How many times", example=2, schema={"minimum": 1, "maximum": 5})] = 1,
        loud: Annotated[bool, Param("Shout", example=False)] = False,
    ) -> str:
        text = " ".join([f"{self.config.greeting} {name}"] * times)
        return text.upper() if loud else text

    @endpoint(name="typed-values", description="Echoes typed values.")
    async def typed_values(
        self,
        day: Annotated[date, Param("A date", example="2026-11-28")],
        kind: Annotated[Literal["a", "b"], Param("A choice", example="a")] = "a",
        tags: Annotated[list[str] | None, Param("Repeated values", example="x")] = None,
        ratio: Annotated[float | None, Param("A number", example=0.5)] = None,
    ) -> dict[str, object]:
        return {"day": day, "kind": kind, "tags": tags, "ratio": ratio}

    @endpoint(description="Anyone may call this.", perm=PUBLIC)
    async def ping(self) -> str:
        return "pong"

    @endpoint(description="Needs a special right.", perm="can_admin")
    async def secret(self) -> str:
        return "42"

    @endpoint(description="List of people.")
    async def people(self) -> list[str]:
        return ["a", "b"]

    @endpoint(
        name="people",
        description="One person.",
        pattern=r"^(?P<person_id>\d+)/$",
        example_pattern="{person_id}/",
    )
    async def person(self, person_id: Annotated[int, Param("Person number", example=3)]) -> dict[str, int]:
        return {"id": person_id}

    @endpoint(
        name="people",
        description="One person's children.",
        pattern=r"^(?P<person_id>\d+)/children/$",
        example_pattern="{person_id}/children/",
    )
    async def children(self, person_id: Annotated[int, Param("Person number", example=3)]) -> list[int]:
        return [person_id * 10]

    @endpoint(description="Creates a person.", methods=["post"], body=Person)
    async def create(self, body: Person, ctx: Context) -> Result:
        return Result(body.model_dump(), name_id=ctx.name_id)

    @endpoint(
        description="Stores a document (JSON Schema body).",
        methods=["post", "put"],
        body={
            "type": "object",
            "required": ["title"],
            "properties": {"title": {"type": "string"}, "pages": {"type": "integer", "minimum": 1}},
        },
    )
    async def store(self, body: dict[str, object]) -> dict[str, object]:
        return body

    @endpoint(description="Nominatim-like raw answer.", raw=True)
    async def raw(self, q: Annotated[str, Param("Query", example="x")]) -> list[dict[str, str]]:
        return [{"display_name": q}]

    @endpoint(description="Who is calling, as the endpoint sees it.", show=False)
    async def whoami(self, ctx: Context) -> dict[str, str | None]:
        return {"apiuser": ctx.apiuser, "request_id": ctx.request_id}

    @endpoint(description="Fails as a business error.")
    async def refuse(self, status: Annotated[int | None, Param("HTTP status", example=200)] = None) -> None:
        raise APIError("no such family", data={"code": "F1"}, http_status=status)

    @endpoint(description="Fails unexpectedly.")
    async def crash(self) -> None:
        raise RuntimeError("secret database password in a stack trace")

    @endpoint(description="Answers after a while.")
    async def slow(self, seconds: Annotated[float, Param("Seconds to wait", example=0.1)] = 0.1) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @endpoint(description="Takes any parameter.")
    async def anything(self, **kwargs: str) -> dict[str, str]:
        return kwargs

    @endpoint(description="A path group plus free parameters.", pattern=r"^(?P<tag>[a-z]+)/$", example_pattern="{tag}/")
    async def tagged(self, tag: Annotated[str, Param("A tag", example="news")], **kwargs: str) -> dict[str, str]:
        return {"tag": tag, **kwargs}

    @periodic(seconds=3600, description="Refreshes nothing.")
    async def refresh(self) -> None:
        return None

    # -- response cache (tests/passerelle/test_cache*.py); hidden from the generated docs,
    # whose tests count the documented endpoints -----------------------------------------

    async def _ask_upstream(self, path: str, q: str | None, ctx: Context) -> object:
        params = {"q": q or "", "NameID": ctx.name_id or ""}
        answer = (await self.http.get(f"{self.config.upstream_url}{path}", params=params)).json()
        if isinstance(answer, dict) and "refuse" in answer:
            raise APIError(answer["refuse"])
        return answer

    @endpoint(description="The application's answer, cached a minute.", cache_duration=60, show=False)
    async def cached(self, ctx: Context, q: Annotated[str | None, Param("Anything", example="x")] = None) -> object:
        return await self._ask_upstream("/cached", q, ctx)

    @endpoint(
        name="cached-result", description="The application's answer with extra keys.", cache_duration=60, show=False
    )
    async def cached_result(self, ctx: Context) -> Result:
        return Result(await self._ask_upstream("/cached", None, ctx), source="upstream")

    @endpoint(
        name="cached-raw", description="The application's answer, raw, cached.", raw=True, cache_duration=60, show=False
    )
    async def cached_raw(self, ctx: Context) -> object:
        return await self._ask_upstream("/cached", None, ctx)

    @endpoint(
        name="cached-admin", description="Cached, with another right.", perm="can_admin", cache_duration=60, show=False
    )
    async def cached_admin(self, ctx: Context) -> object:
        return await self._ask_upstream("/cached", None, ctx)

    @endpoint(
        name="cached-stream",
        description="Streams its own answer, which is never cached.",
        cache_duration=60,
        show=False,
    )
    async def cached_stream(self, ctx: Context) -> web.Response:
        answer = await self._ask_upstream("/cached", None, ctx)
        return web.json_response({"streamed": answer})
