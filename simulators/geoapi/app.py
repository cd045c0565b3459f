"""The aiohttp application: /communes, /departements, /regions (protocols.md §2) and the /_simulator controls."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from passerelle.text import fold
from simulators.controls import add_controls

from .data import Dataset, Row, bundled_dataset

MODES = ("normal", "500", "slow")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COMMUNE_FIELDS = ("nom", "code", "codeDepartement", "siren", "codeEpci", "codeRegion", "codesPostaux", "population")
DEPARTEMENT_FIELDS = ("nom", "code", "codeRegion")
REGION_FIELDS = ("nom", "code")
BASE_FIELDS = ("nom", "code")
COMMUNE_TYPES = ("commune-actuelle",)
COMMUNE_ZONES = ("metro", "drom", "com")
# Departments and regions of overseas collectivities are only listed when asked for (api-geo's default query).
AREA_ZONES = ("metro", "drom")
LIMIT_ERROR = "Your limit parameter is not a number or is negative"
_DIGITS = re.compile(r"[0-9]+")
# Express writes compact JSON in UTF-8, accents unescaped.
_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


@dataclass
class State:
    data: Dataset
    departements_by_code: dict[str, Row]
    regions_by_code: dict[str, Row]
    mode: str = "normal"
    delay: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)


STATE = web.AppKey("geoapi_state", State)


def _text(status: int, text: str) -> web.Response:
    # geo.api.gouv.fr is an Express application: its errors are short text/plain bodies, never JSON.
    return web.Response(status=status, text=text, content_type="text/plain")


class _TextError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@web.middleware
async def _upstream_behaviour(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_simulator/"):
        return await handler(request)
    state = request.app[STATE]
    state.calls[request.path.strip("/") or "/"] += 1
    if state.mode == "slow":
        await asyncio.sleep(state.delay)
    response: web.StreamResponse
    if request.method not in ("GET", "HEAD"):
        response = _text(401, "Unauthorized")
    elif state.mode == "500":
        response = _text(500, "Internal Server Error")
    else:
        try:
            response = await handler(request)
        except _TextError as exc:
            response = _text(exc.status, exc.text)
        except web.HTTPNotFound:
            response = _text(404, "Not Found")
        except web.HTTPException as exc:
            response = _text(exc.status, exc.reason)
    state.statuses[str(response.status)] += 1
    return response


# -- query parameters ---------------------------------------------------------------------------------------------


def _fields(request: web.Request, default: Sequence[str], *, scored: bool) -> list[str]:
    asked = request.query.get("fields")
    fields = list(dict.fromkeys(asked.split(",") if asked else default))
    fields += [name for name in BASE_FIELDS if name not in fields]
    if scored:
        fields.append("_score")
    return fields


def _limit(request: web.Request) -> int | None:
    value = request.query.get("limit")
    if not value:
        return None
    if not _DIGITS.fullmatch(value):
        raise _TextError(400, LIMIT_ERROR)
    return int(value)


def _list(request: web.Request, name: str, default: Sequence[str]) -> Sequence[str]:
    value = request.query.get(name)
    return value.split(",") if value else default


def _check_format(request: web.Request) -> None:
    # Only JSON is simulated; any other format falls back to JSON, as on the real service.
    if request.query.get("format") == "geojson":
        raise _TextError(400, "format=geojson is not simulated")


# -- matching and shaping -----------------------------------------------------------------------------------------


def _score(query: str, row: Row) -> float | None:
    """Every query word must start a word of the name; an exact name scores 1, a partial one its share of the name.

    api-geo ranks with lunr, whose scores are not reproduced: only their role (present, higher is better) is.
    """
    words = query.split()
    if not words:
        return None
    name: str = row["_folded"]
    name_words = name.split()
    if not all(any(candidate.startswith(word) for candidate in name_words) for word in words):
        return None
    if name == query:
        return 1.0
    return round(0.9 * len(query) / max(len(name), 1), 4)


def _matches(row: Row, key: str, wanted: Any) -> bool:
    value = row.get(key)
    if key == "codesPostaux":
        return value is not None and wanted in value
    return value in wanted if isinstance(wanted, tuple) else value == wanted


def _search(rows: Iterable[Row], request: web.Request, filters: dict[str, Any]) -> list[Row]:
    """Rows matching every filter (a tuple value: any of), scored and ranked when ``nom`` is given."""
    selected = [row for row in rows if all(_matches(row, key, value) for key, value in filters.items())]
    nom = request.query.get("nom")
    if nom is None:
        return selected
    query = fold(nom)
    scored = []
    for row in selected:
        score = _score(query, row)
        if score is not None:
            scored.append({**row, "_score": score})
    boost = request.query.get("boost") == "population"
    scored.sort(key=lambda row: (-row["_score"], -row.get("population", 0) if boost else 0))
    return scored


def _shape(state: State, row: Row, fields: Sequence[str]) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for name in fields:
        if name == "departement" and "codeDepartement" in row:
            department = state.departements_by_code[row["codeDepartement"]]
            answer[name] = {"code": department["code"], "nom": department["nom"]}
        elif name == "region" and row.get("codeRegion") in state.regions_by_code:
            region = state.regions_by_code[row["codeRegion"]]
            answer[name] = {"code": region["code"], "nom": region["nom"]}
        elif name in row and (name == "_score" or not name.startswith("_")):
            answer[name] = row[name]
    return answer


def _answer(state: State, rows: list[Row], fields: Sequence[str], limit: int | None) -> web.Response:
    if limit is not None:
        rows = rows[:limit]
    return web.json_response([_shape(state, row, fields) for row in rows], dumps=_dumps)


def _one(rows: Iterable[Row], code: str) -> Row:
    for row in rows:
        if row["code"] == code:
            return row
    raise _TextError(404, "Not Found")


def _query_filters(request: web.Request, names: dict[str, str]) -> dict[str, Any]:
    return {key: request.query[param] for param, key in names.items() if request.query.get(param)}


# -- routes -------------------------------------------------------------------------------------------------------


async def communes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _limit(request)
    _check_format(request)
    filters = _query_filters(
        request,
        {
            "code": "code",
            "codePostal": "codesPostaux",
            "codeDepartement": "codeDepartement",
            "codeRegion": "codeRegion",
            "siren": "siren",
            "codeEpci": "codeEpci",
        },
    )
    filters["type"] = tuple(_list(request, "type", COMMUNE_TYPES))
    filters["zone"] = tuple(_list(request, "zone", COMMUNE_ZONES))
    fields = _fields(request, COMMUNE_FIELDS, scored=bool(request.query.get("nom")))
    return _answer(state, _search(state.data.communes, request, filters), fields, limit)


async def commune(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _check_format(request)
    # By code, every type and zone is found: the default query only applies to lists.
    row = _one(state.data.communes, request.match_info["code"])
    return web.json_response(_shape(state, row, _fields(request, COMMUNE_FIELDS, scored=False)), dumps=_dumps)


async def departements(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _limit(request)
    filters = _query_filters(request, {"code": "code", "codeRegion": "codeRegion"})
    filters["zone"] = tuple(_list(request, "zone", AREA_ZONES))
    fields = _fields(request, DEPARTEMENT_FIELDS, scored=bool(request.query.get("nom")))
    return _answer(state, _search(state.data.departements, request, filters), fields, limit)


async def departement(request: web.Request) -> web.Response:
    state = request.app[STATE]
    row = _one(state.data.departements, request.match_info["code"])
    return web.json_response(_shape(state, row, _fields(request, DEPARTEMENT_FIELDS, scored=False)), dumps=_dumps)


async def departement_communes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _limit(request)
    _check_format(request)
    code = _one(state.data.departements, request.match_info["code"])["code"]
    # api-geo answers the department's current communes whatever the other filters say.
    filters = {"type": COMMUNE_TYPES, "zone": COMMUNE_ZONES, "codeDepartement": code}
    rows = [row for row in state.data.communes if all(_matches(row, key, value) for key, value in filters.items())]
    return _answer(state, rows, _fields(request, COMMUNE_FIELDS, scored=False), limit)


async def regions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _limit(request)
    filters = _query_filters(request, {"code": "code"})
    filters["zone"] = tuple(_list(request, "zone", AREA_ZONES))
    fields = _fields(request, REGION_FIELDS, scored=bool(request.query.get("nom")))
    return _answer(state, _search(state.data.regions, request, filters), fields, limit)


async def region(request: web.Request) -> web.Response:
    state = request.app[STATE]
    row = _one(state.data.regions, request.match_info["code"])
    return web.json_response(_shape(state, row, _fields(request, REGION_FIELDS, scored=False)), dumps=_dumps)


async def region_departements(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _limit(request)
    code = _one(state.data.regions, request.match_info["code"])["code"]
    rows = [row for row in state.data.departements if row["codeRegion"] == code]
    return _answer(state, rows, _fields(request, DEPARTEMENT_FIELDS, scored=False), limit)


def make_app(data: Dataset | None = None) -> web.Application:
    """The simulator over ``data`` (default: the bundled referentials, ``load_dataset()`` for another directory)."""
    data = data if data is not None else bundled_dataset()
    app = web.Application(middlewares=[_upstream_behaviour])
    app[STATE] = State(
        data,
        departements_by_code={row["code"]: row for row in data.departements},
        regions_by_code={row["code"]: row for row in data.regions},
    )
    routes: list[tuple[str, Handler]] = [
        ("/communes", communes),
        ("/communes/{code}", commune),
        ("/departements", departements),
        ("/departements/{code}", departement),
        ("/departements/{code}/communes", departement_communes),
        ("/regions", regions),
        ("/regions/{code}", region),
        ("/regions/{code}/departements", region_departements),
    ]
    # Express routes match with or without a trailing slash.
    for path, handler in routes:
        app.router.add_get(path, handler)
        app.router.add_get(path + "/", handler)
    add_controls(app, STATE, MODES)
    return app
