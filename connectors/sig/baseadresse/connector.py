"""The ``base-adresse`` connector type: address search for forms, as Passerelle's, on two backends.

Endpoints (passerelle.md §7): ``search`` and ``reverse`` in Nominatim's JSON dialect for w.c.s.
geocoding, ``addresses`` and ``streets`` as data sources for autocompletion, ``cities``,
``departments`` and ``regions`` from the bundled INSEE referentials.

Each address call asks the instance's ``backends`` in order (:mod:`.local`, the embedded index;
:mod:`.remote`, the BAN-style geocoder) and the first one able to answer does: a local index not
built yet, or a geocoder down, refusing or rate-limited, hands over to the next. An empty answer
is an answer: it does not go to the next backend. Addresses that the remote geocoder answered are
kept in the instance's records, so ``addresses?id=`` finds them again later, after a restart too;
the local index's ids are looked up in the index itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import structlog
from pydantic import BaseModel

from connectors.sig import referentials
from connectors.sig.baseadresse.areas import AreaReferentials
from connectors.sig.baseadresse.config import BaseAdresseConfig
from connectors.sig.baseadresse.local import LocalIndex
from connectors.sig.baseadresse.remote import RemoteGeocoder
from connectors.sig.baseadresse.shapes import feature_id, nominatim, street_item
from connectors.sig.coordinates import check_lon_lat, lambert93_to_wgs84
from passerelle import (
    Connector,
    Context,
    HubError,
    InstanceInfo,
    Param,
    UpstreamError,
    UpstreamUnavailable,
    WrongParameter,
    endpoint,
    periodic,
)
from passerelle.http import HttpOptions, options_from_config

if TYPE_CHECKING:
    from passerelle.settings import Settings

logger = structlog.get_logger("connectors.sig.baseadresse")

T = TypeVar("T")
AddressType = Literal["housenumber", "street", "locality", "municipality"]
MIN_QUERY = 3  # shorter texts are answered with nothing (the BAN geocoders refuse them)
MAX_QUERY = 200
RECORD_KIND = "address"
FIRST_BUILD_WAIT = 20.0  # seconds, under the availability check's deadline of 25 s
LEADING_NON_WORD = re.compile(r"^[\W_]+")

CITYCODE = {"pattern": r"^(\d{5}|\d[AB]\d{3})$"}
POSTCODE = {"pattern": r"^\d{5}$"}
Q = Param("Address as typed (3 to 200 characters)", example="18 rue duhesme paris", schema={"maxLength": MAX_QUERY})
CITYCODE_PARAM = Param("Only in this commune (INSEE code)", example="75118", schema=CITYCODE)
POSTCODE_PARAM = Param("Only with this postcode", example="75018", schema=POSTCODE)
ZIPCODE_PARAM = Param("Same as postcode (Passerelle's name)", schema=POSTCODE)
LAT_PARAM = Param(
    "Latitude (WGS84) of a point to favour; with lon", example=48.89, schema={"minimum": -90, "maximum": 90}
)
LON_PARAM = Param(
    "Longitude (WGS84) of a point to favour; with lat", example=2.34, schema={"minimum": -180, "maximum": 180}
)
TYPE_PARAM = Param("Only results of this type")
LIMIT_PARAM = Param("Largest number of results (1 to 20)", example=5, schema={"minimum": 1, "maximum": 20})
PAGE_LIMIT_PARAM = Param("Largest number of items (1 to 20)", example=5, schema={"minimum": 1, "maximum": 20})
LANGUAGE_PARAM = Param("Ignored (w.c.s. sends it; answers are in French)", alias="accept-language")
ID_PARAM = Param("Identifier of an item returned earlier", alias="id")


def _query(q: str | None) -> str | None:
    """The text to search, or None when it is too short to search (an empty answer)."""
    if q is None:
        return None
    # The BAN geocoders refuse a text that does not start with a letter or a digit ("- rue…").
    q = LEADING_NON_WORD.sub("", q).strip()
    return q if len(q) >= MIN_QUERY else None


def _point(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    if (lat is None) != (lon is None):
        raise WrongParameter("give both 'lat' and 'lon', or neither")
    return lat, lon


def _postcode(postcode: str | None, zipcode: str | None) -> str | None:
    if postcode and zipcode and postcode != zipcode:
        raise WrongParameter("'postcode' and 'zipcode' are the same filter: give one of them")
    return postcode or zipcode


def _referential(call: Callable[[], T]) -> T:
    try:
        return call()
    except ValueError as error:
        raise WrongParameter(str(error)) from None


class BaseAdresse(Connector):
    slug = "base-adresse"
    title = "Base Adresse Nationale (address search)"
    category = "Geographic information system"
    description = (
        "Address autocompletion, geocoding and reverse geocoding for forms (Passerelle's base-adresse): "
        "an embedded index of BAN/BAL files, the Géoplateforme or an addok geocoder, or both with fallback; "
        "cities, departments and regions from the INSEE referentials."
    )
    Config = BaseAdresseConfig
    config: BaseAdresseConfig

    def __init__(self, instance: InstanceInfo, config: BaseModel, settings: Settings) -> None:
        super().__init__(instance, config, settings)
        self.log = logger.bind(instance=f"{self.instance.type}/{self.instance.slug}")
        self.remote = RemoteGeocoder(self.http, self.config.service_url)
        self.local = LocalIndex(self.files_dir, self.config.sources, self.http, self.log)
        self.areas = AreaReferentials(self.files_dir, self.config.api_geo_url, self.http, self.log)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_refresh = time.monotonic()  # start() checks the sources once

    def http_options(self) -> HttpOptions:
        # Short: a person is typing. Downloads of sources give their own longer timeout.
        base = HttpOptions(total_timeout=10, read_timeout=8, rate_limit=self.config.rate_limit, retries=1)
        return options_from_config(self.config, base)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.api_geo_url:
            await self.areas.load()
            if self.areas.status()["source"] == "bundled":
                self._spawn(self.areas.refresh())
        if self.config.local_enabled:
            # A saved index serves at once; building one (first start, changed sources) goes on in the background.
            await self.local.load()
            self._spawn(self.local.refresh())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @periodic(
        seconds=3600, description="Indexes the address sources again when one changed (checked every refresh_interval)."
    )
    async def refresh_index(self) -> None:
        if not self.config.local_enabled:
            return
        if time.monotonic() - self._last_refresh < self.config.refresh_interval:
            return
        self._last_refresh = time.monotonic()
        await self.local.refresh()

    @periodic(seconds=86400, description="Downloads the communes, départements and régions from api_geo_url, if set.")
    async def refresh_referentials(self) -> None:
        await self.areas.refresh()

    async def check_status(self) -> None:
        if self.config.local_enabled and self.local.current() is None:
            # A first build takes seconds: the first check waits for it rather than report "down" for a whole
            # availability interval (within the check's own deadline).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_BUILD_WAIT):
                    await self.local.settled.wait()
        if self.config.local_enabled and self.local.current() is not None:
            return
        if "remote" in self.config.backends:
            await self.remote.search("mairie", 1, autocomplete=False)
            return
        raise UpstreamUnavailable(self._not_ready_message())

    def status_details(self) -> dict[str, Any]:
        """The embedded index's state, build progress and sources (shown by the admin API)."""
        return {
            "backends": self.config.backends,
            "index": self.local.status() if self.config.local_enabled else None,
            "referentials": self.areas.status(),
        }

    # -- backends -------------------------------------------------------------------------------------

    def _not_ready_message(self) -> str:
        status = self.local.status()
        if status["state"] == "building" and status["progress"]:
            return f"the address index is being built ({status['progress']['percent']:.0f} %); try again shortly"
        if status["state"] == "failed":
            return f"the address index could not be built: {status['last_error']}"
        return "the address index is not ready yet; try again shortly"

    async def _ask(
        self,
        local: Callable[[Any], list[dict[str, Any]]] | None,
        remote: Callable[[], Awaitable[list[dict[str, Any]]]] | None,
    ) -> tuple[str, list[dict[str, Any]]]:
        """(backend, features) from the first backend able to answer."""
        error: HubError | None = None
        for backend in self.config.backends:
            if backend == "local" and local is not None and self.config.local_enabled:
                index = self.local.current()
                if index is None:
                    error = UpstreamUnavailable(self._not_ready_message())
                    continue
                found = local(index)
                if found is not None:
                    return "local", found
            elif backend == "remote" and remote is not None:
                try:
                    return "remote", await remote()
                except UpstreamError as failure:
                    # UpstreamUnavailable and BreakerOpen are UpstreamErrors too.
                    self.log.info(
                        "remote geocoder failed", error=failure.message, next=backend != self.config.backends[-1]
                    )
                    error = failure
        if error is not None:
            raise error
        raise UpstreamUnavailable("no backend of this instance can answer: configure sources or a remote geocoder")

    async def _remember(self, features: list[dict[str, Any]]) -> None:
        """Keep the remote geocoder's answers so that their ids can be looked up later."""
        if features:
            ttl = self.config.id_retention_days * 86400
            await self.records.put_many(RECORD_KIND, {feature_id(f)[:255]: f for f in features}, ttl=ttl)

    async def _lookup(self, ident: str) -> dict[str, Any] | None:
        ident = ident.strip()
        if not ident or len(ident) > 255:
            return None
        if self.config.local_enabled:
            index = self.local.current()
            found = index.get(ident) if index is not None else None
            if found is not None:
                return found
        return await self.records.get(RECORD_KIND, ident)

    async def _search(
        self,
        q: str,
        limit: int,
        *,
        postcode: str | None,
        citycode: str | None,
        type: str | None,
        lat: float | None,
        lon: float | None,
        zipcode: str | None = None,
    ) -> list[dict[str, Any]]:
        """The features matching a typed text; checks the filters first (one place for every endpoint)."""
        postcode = _postcode(postcode, zipcode)
        lat, lon = _point(lat, lon)
        if lat is None and self.config.latitude is not None:
            lat, lon = self.config.latitude, self.config.longitude
        filters = {"postcode": postcode, "citycode": citycode, "type": type, "lat": lat, "lon": lon}
        backend, features = await self._ask(
            lambda index: index.search(q, limit, **filters),
            lambda: self.remote.search(q, limit, **filters),
        )
        if backend == "remote":
            await self._remember(features)
        return features

    async def _reverse(self, lon: float, lat: float, type: str | None) -> list[dict[str, Any]]:
        def local(index: Any) -> list[dict[str, Any]] | None:
            found = index.reverse(lon, lat, 1, type=type)
            near = [f for f in found if f["properties"].get("distance", 0) <= self.config.reverse_max_distance]
            # Farther than that, the point is outside the index's area: the next backend may know it.
            return near if near or "remote" not in self.config.backends else None

        backend, features = await self._ask(local, lambda: self.remote.reverse(lon, lat, 1, type=type))
        if backend == "remote":
            await self._remember(features)
        return features

    # -- Nominatim dialect ----------------------------------------------------------------------------

    def _check_format(self, ctx: Context) -> None:
        fmt = ctx.query.get("format", "json")
        if fmt != "json":
            raise WrongParameter(f"invalid value for parameter 'format': only 'json' is served, not {fmt!r}")

    @endpoint(
        description="Geocoding in Nominatim's JSON dialect (w.c.s. geocoding_service_url)",
        long_description=(
            "A bare list of {lat, lon, display_name, address: {house_number, road, postcode, city, citycode, "
            "country}, id, text, ban_id, type, score, …}, best first, without the {err, data} envelope. "
            "format=json only."
        ),
        raw=True,
        display_order=1,
        display_category="Geocoding",
    )
    async def search(
        self,
        ctx: Context,
        q: Annotated[str, Q],
        limit: Annotated[int, LIMIT_PARAM] = 5,
        citycode: Annotated[str | None, CITYCODE_PARAM] = None,
        postcode: Annotated[str | None, POSTCODE_PARAM] = None,
        zipcode: Annotated[str | None, ZIPCODE_PARAM] = None,
        type: Annotated[AddressType | None, TYPE_PARAM] = None,
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        accept_language: Annotated[str | None, LANGUAGE_PARAM] = None,
    ) -> list[dict[str, Any]]:
        self._check_format(ctx)
        text = _query(q)
        if text is None:
            if not q.strip():
                raise WrongParameter("missing parameter 'q': the address to find")
            return []
        features = await self._search(
            text, limit, postcode=postcode, zipcode=zipcode, citycode=citycode, type=type, lat=lat, lon=lon
        )
        return [nominatim(f) for f in features]

    @endpoint(
        description="Reverse geocoding in Nominatim's JSON dialect (w.c.s. reverse_geocoding_service_url)",
        long_description=(
            "The nearest address of a point given as lat/lon (WGS84) or x/y (Lambert-93): one object "
            "{lat, lon, display_name, address: {…}, distance, …} without the envelope, or Nominatim's "
            '{"error": "Unable to geocode"} when there is none.'
        ),
        raw=True,
        display_order=2,
        display_category="Geocoding",
    )
    async def reverse(
        self,
        ctx: Context,
        lat: Annotated[
            float | None, Param("Latitude (WGS84)", example=48.890787, schema={"minimum": -90, "maximum": 90})
        ] = None,
        lon: Annotated[
            float | None, Param("Longitude (WGS84)", example=2.338562, schema={"minimum": -180, "maximum": 180})
        ] = None,
        x: Annotated[
            float | None, Param("Easting in Lambert-93 (EPSG:2154), instead of lat/lon", example=651500.23)
        ] = None,
        y: Annotated[float | None, Param("Northing in Lambert-93 (EPSG:2154), with x", example=6865844.9)] = None,
        type: Annotated[AddressType | None, TYPE_PARAM] = None,
        addressdetails: Annotated[str | None, Param("Ignored (w.c.s. sends 1; the address is always detailed)")] = None,
        zoom: Annotated[str | None, Param("Ignored (Nominatim's level of detail)")] = None,
        accept_language: Annotated[str | None, LANGUAGE_PARAM] = None,
    ) -> dict[str, Any]:
        self._check_format(ctx)
        lon, lat = self._reverse_point(lat, lon, x, y)
        features = await self._reverse(lon, lat, type)
        return nominatim(features[0]) if features else {"error": "Unable to geocode"}

    @staticmethod
    def _reverse_point(lat: float | None, lon: float | None, x: float | None, y: float | None) -> tuple[float, float]:
        if x is not None or y is not None:
            if x is None or y is None:
                raise WrongParameter("give both 'x' and 'y' (Lambert-93), or 'lat' and 'lon'")
            if lat is not None or lon is not None:
                raise WrongParameter("give either 'lat'/'lon' (WGS84) or 'x'/'y' (Lambert-93), not both")
            try:
                return lambert93_to_wgs84(x, y)
            except ValueError as error:
                raise WrongParameter(f"invalid 'x'/'y': {error}") from None
        if lat is None or lon is None:
            raise WrongParameter("missing parameters: give 'lat' and 'lon' (WGS84) or 'x' and 'y' (Lambert-93)")
        check_lon_lat(lon, lat)
        return lon, lat

    # -- data sources ---------------------------------------------------------------------------------

    @endpoint(
        description="Addresses as a data source, for autocompletion",
        long_description=(
            "{data: [{id, text, lat, lon, address: {…}, ban_id, type, score, …}]}. With q= the addresses "
            "matching the text as typed (prefix of the last word, one typo per long word, abbreviations); "
            "with id= the address of that id, returned earlier (still found after a restart)."
        ),
        datasource=True,
        display_order=3,
        display_category="Data sources",
    )
    async def addresses(
        self,
        q: Annotated[str | None, Q] = None,
        ident: Annotated[str | None, ID_PARAM] = None,
        citycode: Annotated[str | None, CITYCODE_PARAM] = None,
        postcode: Annotated[str | None, POSTCODE_PARAM] = None,
        zipcode: Annotated[str | None, ZIPCODE_PARAM] = None,
        type: Annotated[AddressType | None, TYPE_PARAM] = None,
        lat: Annotated[float | None, LAT_PARAM] = None,
        lon: Annotated[float | None, LON_PARAM] = None,
        page_limit: Annotated[int, PAGE_LIMIT_PARAM] = 5,
    ) -> list[dict[str, Any]]:
        if ident is not None:
            found = await self._lookup(ident)
            return [nominatim(found)] if found else []
        text = _query(q)
        if text is None:
            return []
        features = await self._search(
            text, page_limit, postcode=postcode, zipcode=zipcode, citycode=citycode, type=type, lat=lat, lon=lon
        )
        # A Nominatim result is a data-source item already: it has id and text.
        return [nominatim(f) for f in features]

    @endpoint(
        description="Streets as a data source",
        long_description=(
            "{data: [{id, text, type, city, citycode, zipcode, ban_id, lat, lon}]}: streets and lieux-dits "
            "matching q=, or every one of a commune (citycode=) or postcode, by name; id= looks one up. "
            "distinct=true keeps one item per street name and commune."
        ),
        datasource=True,
        display_order=4,
        display_category="Data sources",
    )
    async def streets(
        self,
        q: Annotated[str | None, Q] = None,
        ident: Annotated[str | None, ID_PARAM] = None,
        citycode: Annotated[str | None, CITYCODE_PARAM] = None,
        postcode: Annotated[str | None, POSTCODE_PARAM] = None,
        zipcode: Annotated[str | None, ZIPCODE_PARAM] = None,
        page_limit: Annotated[
            int, Param("Largest number of items", example=30, schema={"minimum": 1, "maximum": 1000})
        ] = 30,
        distinct: Annotated[bool, Param("One item per street name and commune")] = True,
    ) -> list[dict[str, Any]]:
        postcode = _postcode(postcode, zipcode)
        if ident is not None:
            found = await self._lookup(ident)
            if found is None or found["properties"].get("type") not in ("street", "locality"):
                return []
            return [street_item(found)]
        text = _query(q)
        if text is None:
            if q is not None and q.strip():
                return []
            if not (citycode or postcode):
                raise WrongParameter("give q (a street name), or citycode or postcode to list a commune's streets")
            _, features = await self._ask(
                lambda index: index.streets(citycode=citycode, postcode=postcode, limit=page_limit), None
            )
        else:
            features = [
                f
                for kind in ("street", "locality")
                for f in await self._search(
                    text, page_limit, postcode=postcode, citycode=citycode, type=kind, lat=None, lon=None
                )
            ]
            features.sort(key=lambda f: -f["properties"].get("score", 0))
        items = [street_item(f) for f in features]
        if distinct:
            seen: set[tuple[str, str]] = set()
            items = [
                i for i in items if (i["text"], i["citycode"]) not in seen and not seen.add((i["text"], i["citycode"]))
            ]
        return items[:page_limit]

    @endpoint(
        description="Cities (communes and their postcodes) as a data source",
        long_description=(
            "{data: [{id: '<insee>.<postcode>', text: '<name> <postcode>', name, code, zipcode, population, "
            "department_code, department_name, region_code, region_name}]}, from the INSEE list bundled with the hub "
            "or, with api_geo_url, the one last downloaded from geo.api.gouv.fr."
        ),
        datasource=True,
        display_order=5,
        display_category="Referentials",
    )
    async def cities(
        self,
        q: Annotated[str | None, Param("Name or postcode as typed", example="gap")] = None,
        ident: Annotated[
            str | None, Param("Identifier '<insee>.<postcode>'", alias="id", example="05061.05000")
        ] = None,
        code: Annotated[str | None, Param("INSEE code", example="05061", schema=CITYCODE)] = None,
        zipcode: Annotated[str | None, ZIPCODE_PARAM] = None,
        department_code: Annotated[str | None, Param("Department code", example="05")] = None,
        region_code: Annotated[str | None, Param("Region code", example="93")] = None,
        page_limit: Annotated[int, Param("Largest number of items", schema={"minimum": 1, "maximum": 1000})] = 30,
        ordering: Annotated[
            str | None,
            Param("Sort by these fields (name, code, zipcode, population; '-' for descending)", example="-population"),
        ] = None,
    ) -> list[dict[str, Any]]:
        return _referential(
            lambda: referentials.cities(
                q=q,
                id=ident,
                code=code,
                zipcode=zipcode,
                department_code=department_code,
                region_code=region_code,
                page_limit=page_limit,
                ordering=ordering,
                refs=self.areas.current(),
            )
        )

    @endpoint(
        description="Departments as a data source",
        long_description="{data: [{id, code, text: '<code> - <name>', name, region_code, region_name}]}.",
        datasource=True,
        display_order=6,
        display_category="Referentials",
    )
    async def departments(
        self,
        q: Annotated[str | None, Param("Code or name as typed", example="alpes")] = None,
        ident: Annotated[str | None, Param("Department code", alias="id", example="05")] = None,
        region_code: Annotated[str | None, Param("Region code", example="93")] = None,
    ) -> list[dict[str, Any]]:
        return _referential(
            lambda: referentials.departments(q=q, id=ident, region_code=region_code, refs=self.areas.current())
        )

    @endpoint(
        description="Regions as a data source",
        long_description="{data: [{id, code, text: '<code> - <name>', name}]}.",
        datasource=True,
        display_order=7,
        display_category="Referentials",
    )
    async def regions(
        self,
        q: Annotated[str | None, Param("Code or name as typed", example="provence")] = None,
        ident: Annotated[str | None, Param("Region code", alias="id", example="93")] = None,
    ) -> list[dict[str, Any]]:
        return _referential(lambda: referentials.regions(q=q, id=ident, refs=self.areas.current()))
