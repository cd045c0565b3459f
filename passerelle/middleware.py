"""The one middleware: request id, and every failure rendered as the envelope.

HubErrors become their envelope; aiohttp's own HTTP errors (unknown route, body
too large…) are translated to the matching envelope; anything else is a 500
envelope carrying only the request id, with the traceback in the logs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from passerelle import metrics, resourcelogs
from passerelle.dispatch import CALLED_ENDPOINT
from passerelle.envelope import (
    HubError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RequestError,
    error_envelope,
)
from passerelle.requestid import CURRENT_REQUEST_ID, REQUEST_ID_HEADER, assign_request_id

logger = structlog.get_logger("passerelle.http.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def translate_http_exception(exc: web.HTTPException) -> HubError:
    if exc.status == 404:
        return NotFound("not found")
    if exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        return MethodNotAllowed(f"method not allowed, use {', '.join(allowed)}", allowed=allowed)
    if exc.status == 413:
        return RequestError("request body too large", http_status=413)
    if 400 <= exc.status < 500:
        return RequestError(exc.reason, http_status=exc.status)
    return InternalError(exc.reason, http_status=exc.status)


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    rid = assign_request_id(request)
    token = CURRENT_REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    except HubError as error:
        response = error_envelope(error)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are answers, not errors
            exc.headers[REQUEST_ID_HEADER] = rid
            raise
        response = error_envelope(translate_http_exception(exc))
    except Exception:
        logger.exception("unexpected error", method=request.method, path=request.path, request_id=rid)
        response = error_envelope(InternalError(f"internal error (request id {rid})"))
    finally:
        CURRENT_REQUEST_ID.reset(token)
    response.headers[REQUEST_ID_HEADER] = rid
    called = request.get(CALLED_ENDPOINT)
    if called is not None:
        record_call(request, called, response, time.perf_counter() - started)
    return response


def record_call(request: web.Request, called: tuple, response: web.StreamResponse, duration: float) -> None:
    """Metrics and the resource log line of an endpoint call (only calls that reached a
    known instance and endpoint)."""
    connector, endpoint = called
    info = connector.instance
    metrics.REQUESTS.labels(info.type, info.slug, endpoint, str(response.status)).inc()
    metrics.REQUEST_DURATION.labels(info.type, info.slug, endpoint).observe(duration)
    resourcelogs.log_call(request, connector, endpoint, response, duration)
