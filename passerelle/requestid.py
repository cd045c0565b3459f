"""The request id: taken from ``X-Request-ID`` or created, logged with every line
of the request, returned to the caller and passed on to upstream calls.

The middleware also puts it in :data:`CURRENT_REQUEST_ID`, a context variable, so
that code far from the request (the outbound client, log processors, resource
logs) finds it without being handed the request.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
# A caller-supplied id is kept only if it is short and harmless in a log line.
ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("passerelle_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served by this task, if any."""
    return CURRENT_REQUEST_ID.get()


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
