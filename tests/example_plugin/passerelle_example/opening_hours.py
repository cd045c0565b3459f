"""Opening hours of a town's public places: town hall, libraries, swimming pools…

The town publishes them through a small JSON API. Every call carries the API
token in the ``X-Api-Key`` header::

    GET  /places                  {"places": [{"id", "name", "address", "kind"}, ...]}
    GET  /places/<id>             {"id", "name", "address", "kind",
                                   "weekly": {"monday": [["09:00", "12:00"], ...], ...},
                                   "closures": [{"date": "2026-12-25", "reason": "Noël"}, ...]}
                                  404 when the place does not exist
    POST /places/<id>/closures    {"date", "reason", "declared_by"} -> 201 {"id", ...}
                                  409 when a closure is already declared on that day
    GET  /status                  {"status": "ok"}
"""

from __future__ import annotations

import time
import unicodedata
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from passerelle import (
    PUBLIC,
    APIError,
    Connector,
    Context,
    NotFound,
    Param,
    Result,
    UpstreamError,
    UpstreamUnavailable,
    endpoint,
    periodic,
)
from passerelle.http import HttpOptions, Response

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
REFRESH_SECONDS = 3600
M = TypeVar("M", bound=BaseModel)


class OpeningHoursConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: AnyHttpUrl = Field(
        description="Root URL of the town's opening-hours API, e.g. https://horaires.ville.example/api/."
    )
    api_token: SecretStr = Field(description="Token sent in the X-Api-Key header of every call.")
    timeout: float = Field(10.0, gt=0, le=25, description="Seconds to wait for an answer of the API.")


class Closure(BaseModel):
    """An exceptional closure, declared by an agent from a back-office form."""

    model_config = ConfigDict(extra="forbid")

    place_id: str = Field(
        pattern=r"^[a-z0-9-]+$", description="Identifier of the place, as the places endpoint lists it."
    )
    day: date = Field(description="Day the place is closed (YYYY-MM-DD).")
    reason: str = Field(min_length=1, max_length=200, description="Reason shown to citizens.")


# What the API answers, validated: a document of another shape is the API's fault.


class UpstreamClosure(BaseModel):
    day: date = Field(alias="date")
    reason: str


class Place(BaseModel):
    id: str
    name: str
    address: str = ""
    kind: str = ""
    weekly: dict[str, list[tuple[str, str]]] = {}
    closures: list[UpstreamClosure] = []


class PlaceList(BaseModel):
    places: list[Place]


def parse(model: type[M], payload: Any) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError:
        raise UpstreamError("the opening-hours API answered a document of an unexpected shape") from None


def fold(text: str) -> str:
    """Lower-case text without accents, so that "mediatheque" finds "Médiathèque"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class OpeningHours(Connector):
    slug = "opening-hours"
    title = "Horaires d'ouverture"
    category = "Data sources"
    description = "Opening hours of the town's public places, and their exceptional closures."
    Config = OpeningHoursConfig
    config: OpeningHoursConfig  # narrows the base class's type for editors and type checkers

    async def start(self) -> None:
        self._places: list[Place] | None = None
        self._places_fetched_at = 0.0

    def http_options(self) -> HttpOptions:
        return HttpOptions(total_timeout=self.config.timeout, connect_timeout=min(5.0, self.config.timeout))

    # -- calls to the API ------------------------------------------------------

    async def call(self, method: str, path: str, **kwargs: Any) -> Response:
        """One call to the API through the hub's client, with the token."""
        url = f"{str(self.config.base_url).rstrip('/')}/{path}"
        headers = {"X-Api-Key": self.config.api_token.get_secret_value()}
        response = await self.http.request(method, url, headers=headers, **kwargs)
        if response.status in (401, 403):
            raise UpstreamError("the opening-hours API refused the token: check the instance configuration")
        return response

    async def known_places(self) -> list[Place]:
        """The list of places, fetched again when older than the refresh interval."""
        if self._places is None or time.monotonic() - self._places_fetched_at > REFRESH_SECONDS:
            await self.refresh_places()
        assert self._places is not None
        return self._places

    async def place_details(self, place_id: str) -> Place:
        response = await self.call("GET", f"places/{place_id}")
        if response.status == 404:
            raise NotFound(f"no place '{place_id}' in the opening-hours API")
        if response.status != 200:
            raise UpstreamError(f"the opening-hours API answered HTTP {response.status}")
        return parse(Place, response.json())

    # -- endpoints ---------------------------------------------------------------

    @endpoint(
        perm=PUBLIC,
        datasource=True,
        description="Places, as a data source for forms.",
        long_description="Opening hours are public information: this endpoint needs no access right.",
    )
    async def places(
        self,
        q: Annotated[str | None, Param("Text searched in names and addresses", example="mediatheque")] = None,
        place_id: Annotated[
            str | None, Param("Identifier of the one place to return", example="mediatheque-centre", alias="id")
        ] = None,
    ) -> list[dict[str, str]]:
        places = await self.known_places()
        if place_id is not None:
            places = [p for p in places if p.id == place_id]
        if q:
            needle = fold(q)
            places = [p for p in places if needle in fold(f"{p.name} {p.address}")]
        return [{"id": p.id, "text": p.name, "address": p.address, "kind": p.kind} for p in places]

    @endpoint(
        name="place",
        pattern=r"^(?P<place_id>[a-z0-9-]+)/$",
        example_pattern="{place_id}/",
        description="Opening hours of one place on one day.",
    )
    async def opening_hours(
        self,
        place_id: Annotated[str, Param("Identifier of the place", example="mediatheque-centre")],
        day: Annotated[
            date | None, Param("Day to describe, today by default", example="2026-12-24", alias="date")
        ] = None,
    ) -> Result:
        place = await self.place_details(place_id)
        day = day or date.today()
        closure = next((c.reason for c in place.closures if c.day == day), None)
        hours = [] if closure else place.weekly.get(WEEKDAYS[day.weekday()], [])
        slots = [{"start": start, "end": end} for start, end in hours]
        return Result(
            {"date": day, "open": bool(slots), "slots": slots, "closure": closure},
            place={"id": place.id, "text": place.name},
        )

    @endpoint(
        name="place",
        pattern=r"^(?P<place_id>[a-z0-9-]+)/jsonld/$",
        example_pattern="{place_id}/jsonld/",
        raw=True,
        description="One place as schema.org JSON-LD, for web pages.",
    )
    async def place_jsonld(
        self, place_id: Annotated[str, Param("Identifier of the place", example="mediatheque-centre")]
    ) -> dict[str, Any]:
        place = await self.place_details(place_id)
        return {
            "@context": "https://schema.org",
            "@type": "CivicStructure",
            "identifier": place.id,
            "name": place.name,
            "address": place.address,
            "openingHoursSpecification": [
                {
                    "@type": "OpeningHoursSpecification",
                    "dayOfWeek": f"https://schema.org/{weekday.capitalize()}",
                    "opens": start,
                    "closes": end,
                }
                for weekday in WEEKDAYS
                for start, end in place.weekly.get(weekday, [])
            ],
        }

    @endpoint(
        name="declare-closure",
        methods=["post"],
        perm="can_declare_closures",
        body=Closure,
        description="Declares an exceptional closure of a place.",
        long_description="The NameID of the agent who filled the form, when given, is sent to the API as the author.",
    )
    async def declare_closure(self, body: Closure, ctx: Context) -> dict[str, Any]:
        if body.day < date.today():
            raise APIError("a closure cannot be declared in the past", data={"date": body.day})
        response = await self.call(
            "POST",
            f"places/{body.place_id}/closures",
            json={"date": body.day.isoformat(), "reason": body.reason, "declared_by": ctx.name_id},
        )
        if response.status == 404:
            raise APIError(f"no place '{body.place_id}' in the opening-hours API")
        if response.status == 409:
            raise APIError("a closure is already declared for this place on that day", data={"date": body.day})
        if response.status != 201:
            raise UpstreamError(f"the opening-hours API answered HTTP {response.status}")
        return response.json()

    # -- periodic job and availability check ---------------------------------------

    @periodic(seconds=REFRESH_SECONDS, description="Refreshes the list of places.")
    async def refresh_places(self) -> None:
        response = await self.call("GET", "places")
        if response.status != 200:
            raise UpstreamError(f"the opening-hours API answered HTTP {response.status} for the list of places")
        self._places = parse(PlaceList, response.json()).places
        self._places_fetched_at = time.monotonic()

    async def check_status(self) -> None:
        response = await self.call("GET", "status")
        payload = response.json() if response.status == 200 else None
        if not isinstance(payload, dict) or payload.get("status") != "ok":
            raise UpstreamUnavailable("the opening-hours API says it is not available")
