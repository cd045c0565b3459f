"""The request id: taken from ``X-Request-ID`` or created, logged with every line
of the request, returned to the caller (and later passed to upstream calls)."""

from __future__ import annotations

import os
import re

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
# A caller-supplied id is kept only if it is short and harmless in a log line.
ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex at a quarter of the cost.
    return os.urandom(16).hex()


def assign_request_id(request: web.Request) -> str:
    supplied = request.headers.get(REQUEST_ID_HEADER)
    rid = supplied if supplied and ACCEPTABLE_ID.match(supplied) else new_request_id()
    request[REQUEST_ID_KEY] = rid
    return rid


def request_id_of(request: web.Request) -> str:
    rid = request.get(REQUEST_ID_KEY)
    return rid if rid is not None else assign_request_id(request)
