"""The JSON envelope every endpoint answers with, and the one error tree.

Success::

    {"err": 0, "data": ...}            (extra top-level keys allowed)

Failure (Passerelle's convention, which w.c.s. and Combo branch on)::

    {"err": 1, "err_class": "<module.Class>", "err_desc": "<text>", "data": ...}

Every error the hub answers with is a :class:`HubError`. Raise the most precise
class; the HTTP status, ``err_class`` and the message follow from it::

    HubError                       (500) base class, never raised directly
    ├── APIError                   (200) business error; http_status= overrides
    │   ├── NotLinked              (200) the NameID is linked to no account on this instance
    │   └── UpstreamError          (502) the business application failed or answered nonsense
    │       └── UpstreamUnavailable (503) the application is down or answers that it is overloaded
    │           └── BreakerOpen    (503) recent calls failed: answered at once, without calling it
    ├── RequestError               (400) the caller sent something wrong
    │   ├── WrongParameter         (400) missing, malformed or unknown query parameter
    │   └── InvalidBody            (400) the JSON body fails its schema
    ├── Unauthorized               (401) credentials are missing or wrong
    ├── PermissionDenied           (403) the caller may not call this endpoint
    ├── NotFound                   (404) unknown type, instance, endpoint or object
    ├── MethodNotAllowed           (405) the endpoint exists, not with this method
    └── InternalError              (500) an unexpected exception; its details stay in the logs

Business errors answer HTTP 200 by default, as in Passerelle, because w.c.s.
continues a workflow on ``err: 1`` but stops on 4xx/5xx. An unexpected exception
is never shown to the client: it becomes an ``InternalError`` envelope naming the
request id under which the traceback was logged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from aiohttp import web

__all__ = [
    "APIError",
    "BreakerOpen",
    "HubError",
    "InternalError",
    "InvalidBody",
    "MethodNotAllowed",
    "NotFound",
    "NotLinked",
    "PermissionDenied",
    "RequestError",
    "Result",
    "Unauthorized",
    "UpstreamError",
    "UpstreamUnavailable",
    "WrongParameter",
    "dumps",
    "error_envelope",
    "json_response",
]


class HubError(Exception):
    """Base of every error rendered as an ``{"err": 1, ...}`` envelope."""

    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        data: Any = None,
        err: int | str = 1,
        http_status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.data = data
        self.err = err
        self.extra = extra or {}
        if http_status is not None:
            self.status = http_status
        else:
            self.status = type(self).http_status
        super().__init__(self.message)

    @classmethod
    def err_class(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "err": self.err,
            "err_class": self.err_class(),
            "err_desc": self.message,
            "data": self.data,
        }
        body.update(self.extra)
        return body


class APIError(HubError):
    """A business error: the request was understood, the answer is "no"."""

    http_status = 200
    default_message = "error"


class NotLinked(APIError):
    """The citizen's NameID is linked to no account on this instance. Its
    ``err_class`` (``passerelle.envelope.NotLinked``) is stable: a w.c.s. form
    branches on it to offer the ``link`` step."""

    http_status = 200
    default_message = "no account is linked to this NameID"


class UpstreamError(APIError):
    """The business application failed or answered something unusable."""

    http_status = 502
    default_message = "the business application answered with an error"


class UpstreamUnavailable(UpstreamError):
    """The business application cannot be reached (or its breaker is open)."""

    http_status = 503
    default_message = "the business application is unavailable"


class BreakerOpen(UpstreamUnavailable):
    """The last calls to the business application failed: its circuit breaker is open
    and the hub answers at once, without calling it, until a probe call succeeds
    (:mod:`passerelle.breaker`). ``err_desc`` says when the next try is."""

    http_status = 503
    default_message = "the business application is unavailable (its last calls failed)"


class RequestError(HubError):
    """The caller sent something the hub cannot act on."""

    http_status = 400
    default_message = "bad request"


class WrongParameter(RequestError):
    """A query parameter is missing, malformed or unknown."""

    default_message = "wrong parameter"


class InvalidBody(RequestError):
    """The JSON body is not JSON or does not follow the endpoint's schema."""

    default_message = "invalid request body"


class Unauthorized(HubError):
    http_status = 401
    default_message = "authentication required"


class PermissionDenied(HubError):
    http_status = 403
    default_message = "permission denied"


class NotFound(HubError):
    http_status = 404
    default_message = "not found"


class MethodNotAllowed(HubError):
    http_status = 405
    default_message = "method not allowed"

    def __init__(self, message: str | None = None, *, allowed: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.allowed = [m.upper() for m in allowed or []]


class InternalError(HubError):
    """An unexpected exception, reported without its details."""

    http_status = 500
    default_message = "internal error"


class Result:
    """What an endpoint returns to add top-level keys next to ``data``.

    ``return Result(items, meta={"count": 3})`` answers
    ``{"err": 0, "data": items, "meta": {"count": 3}}``.
    """

    __slots__ = ("data", "extra")

    def __init__(self, data: Any, **extra: Any) -> None:
        if "err" in extra:
            raise ValueError("'err' is set by the envelope")
        self.data = data
        self.extra = extra

    def envelope(self) -> dict[str, Any]:
        return {"err": 0, "data": self.data, **self.extra}


def _default(value: Any) -> Any:
    # Values orjson does not know natively but connectors commonly return.
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dumps(value: Any) -> bytes:
    """Serialise to JSON bytes; the one serialiser of the hub's answers."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError:
        # Non-string keys (ints from a back-end, say) are rare and OPT_NON_STR_KEYS
        # nearly doubles orjson's cost on large answers: only pay for it when needed.
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json", headers=headers)


def error_envelope(error: HubError) -> web.Response:
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    return json_response(error.envelope(), status=error.status, headers=headers)
