"""The baseline of the overhead benchmark: a bare aiohttp handler, no framework.

It serves the same JSON as the hub's ``GET /csvdatasource/<slug>/data`` for a fixed
set of query strings: the payloads are built once at start-up from the same CSV file
(items ``{"id", "text", <every other column>}`` sorted by folded text, ``q=`` keeping
the items whose folded text holds every word, ``limit=`` cutting the list, wrapped in
``{"err": 0, "data": [...]}``), then serialised on every request with
``web.json_response``, i.e. the standard library's ``json.dumps`` (``--serializer orjson``
serialises with ``orjson.dumps`` instead, as the hub does). The handler only
looks its payload up by the raw query string; there is no routing beyond aiohttp's,
no middleware, no permission check, no parameter validation and no access log.

    python bench/overhead/bare_server.py --csv FILE --id-column id --text-column nom \
        --path /csvdatasource/communes/data --case "q=mon&limit=10" --case "" --port 8081

``bench/overhead/run.py`` starts it, checks its answers equal the hub's, and stops it.
"""

from __future__ import annotations

import argparse
import csv
import re
import unicodedata
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from passerelle.cli import use_uvloop

_NON_WORD = re.compile(r"[\W_]+")


def fold(value: str) -> str:
    """No accents, no case, punctuation as single spaces (as the hub compares texts)."""
    decomposed = unicodedata.normalize("NFKD", value.casefold().replace("œ", "oe").replace("æ", "ae"))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NON_WORD.sub(" ", bare).strip()


def load_items(path: str, id_column: str, text_column: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    items = []
    for row in rows:
        item = {"id": row[id_column], "text": row[text_column]}
        item.update((key, value) for key, value in row.items() if key not in ("id", "text"))
        items.append(item)
    items.sort(key=lambda item: (fold(item["text"]), item["text"]))
    return items


def answer(items: list[dict[str, str]], query_string: str) -> dict[str, Any]:
    query = {key: values[0] for key, values in parse_qs(query_string, keep_blank_values=True).items()}
    words = fold(query.get("q", "")).split()
    found = [item for item in items if all(word in fold(item["text"]) for word in words)]
    if "id" in query:
        found = [item for item in found if item["id"] == query["id"]][:1]
    limit = int(query.get("limit") or 0)
    return {"err": 0, "data": found[:limit] if limit else found}


def make_app(payloads: dict[str, dict[str, Any]], path: str, serializer: str = "json") -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        payload = payloads.get(request.query_string)
        if payload is None:
            raise web.HTTPNotFound()
        return web.json_response(payload)

    async def orjson_handler(request: web.Request) -> web.Response:
        payload = payloads.get(request.query_string)
        if payload is None:
            raise web.HTTPNotFound()
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    app = web.Application()
    app.router.add_get(path, orjson_handler if serializer == "orjson" else handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", required=True, help="CSV file (UTF-8, comma-separated, with a header row)")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--path", required=True, help="URL path to serve, e.g. /csvdatasource/communes/data")
    parser.add_argument("--case", action="append", default=[], help="a query string to answer (repeatable)")
    parser.add_argument("--serializer", choices=("json", "orjson"), default="json", help="default: stdlib json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    items = load_items(args.csv, args.id_column, args.text_column)
    payloads = {case: answer(items, case) for case in args.case}
    app = make_app(payloads, args.path, args.serializer)
    use_uvloop()  # the event loop `passerelle serve` runs on: the comparison is about the framework
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
