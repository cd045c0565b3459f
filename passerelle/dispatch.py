"""Where an endpoint call goes: ``/<type>/<slug>/<endpoint>[/<rest>]``.

One handler does, in order: find the instance (404), find the endpoint variant
whose pattern matches the rest of the path (404) and accepts the method (405),
check the caller's right (403), validate query parameters (400) and the JSON body
(400), call the connector method, and render the envelope. GET and HEAD calls of
endpoints declaring a ``cache_duration`` go through the response cache
(:mod:`passerelle.cache`) instead, once the right is checked and the parameters
validated. Errors raised on the way are rendered by :mod:`passerelle.middleware`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import orjson
from aiohttp import web
from pydantic import ValidationError

from passerelle.auth.access import AccessChecker, open_caller, raw_query_string
from passerelle.cache import Produced, ResponseCache
from passerelle.connectors import Connector, Context, EndpointSpec
from passerelle.envelope import (
    InvalidBody,
    MethodNotAllowed,
    NotFound,
    Result,
    WrongParameter,
    dumps,
)
from passerelle.instances import InstanceRegistry
from passerelle.parameters import PUBLIK_PARAMETERS
from passerelle.requestid import request_id_of
from passerelle.resourcelogs import CALLER

CALLED_ENDPOINT = web.RequestKey("called_endpoint", tuple)

JSONP_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,100}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CACHED_METHODS = frozenset({"GET", "HEAD"})


def select_endpoint(connector: Connector, name: str, rest: str, method: str) -> tuple[EndpointSpec, dict[str, str]]:
    """The endpoint variant for this path and method, with its pattern's groups."""
    specs = connector.endpoints.get(name)
    if not specs:
        raise NotFound(f"unknown endpoint '{name}' on {connector.instance.type}/{connector.instance.slug}")
    matching: list[tuple[EndpointSpec, dict[str, str]]] = []
    for spec in specs:
        if spec.pattern is None:
            if rest in ("", "/"):
                matching.append((spec, {}))
            continue
        match = spec.pattern.match(rest)
        if match is None:
            # Accept the path with or without its trailing slash.
            alternative = rest[:-1] if rest.endswith("/") else rest + "/"
            match = spec.pattern.match(alternative)
        if match is not None:
            matching.append((spec, {k: v for k, v in match.groupdict().items() if v is not None}))
    if not matching:
        raise NotFound(f"unknown path '{rest}' for endpoint '{name}'")
    for spec, groups in matching:
        if method in spec.methods or (method == "HEAD" and "GET" in spec.methods):
            return spec, groups
    allowed = sorted({m for spec, _ in matching for m in spec.methods})
    raise MethodNotAllowed(f"method {method} not allowed, use {', '.join(allowed)}", allowed=allowed)


def read_query(spec: EndpointSpec, query: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    known: set[str] = set()
    for param in spec.query_params:
        known.add(param.query_name)
        if param.many:
            values = query.getall(param.query_name, [])
            if values:
                arguments[param.name] = param.convert(values)
            elif param.required:
                raise WrongParameter(_missing(param))
            continue
        raw = query.get(param.query_name)
        if raw is None:
            if param.required:
                raise WrongParameter(_missing(param))
            continue
        arguments[param.name] = param.convert(raw)
    if len(query) > len(arguments):
        unknown = [k for k in query if k not in known and k not in PUBLIK_PARAMETERS]
        if unknown:
            if spec.signature.accepts_extra:
                taken = {p.name for p in spec.path_params} | {p.name for p in spec.query_params}
                for key in unknown:
                    if key in taken:
                        # It would silently replace a path value or a declared argument.
                        raise WrongParameter(f"parameter '{key}' cannot be given in the query string")
                    arguments.setdefault(key, query.get(key))
            else:
                accepted = ", ".join(p.query_name for p in spec.query_params) or "none"
                names = ", ".join(repr(k) for k in dict.fromkeys(unknown))
                raise WrongParameter(
                    f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}; this endpoint accepts: {accepted}"
                )
    return arguments


def _missing(param: Any) -> str:
    what = f" ({param.description})" if param.description else ""
    return f"missing parameter '{param.query_name}'{what}: expected {param.type_label()}"


def convert_path(spec: EndpointSpec, groups: dict[str, str]) -> dict[str, Any]:
    arguments = {}
    for param in spec.path_params:
        if param.name in groups:
            arguments[param.name] = param.convert(groups[param.name])
        elif not param.required:
            arguments[param.name] = param.default
    return arguments


async def read_body(spec: EndpointSpec, request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidBody("a JSON body is required")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}") from None
    if spec.body_model is not None:
        try:
            return spec.body_model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidBody(describe_body_errors(exc)) from None
    assert spec.body_schema is not None
    validator = jsonschema.Draft202012Validator(spec.body_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidBody(f"invalid body at '{where}': {error.message}")
    return payload


def describe_body_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = "/".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"'{where}': {error['msg']}")
    return "invalid body at " + "; ".join(parts)


def payload_of(spec: EndpointSpec, result: Any) -> tuple[Any, bool]:
    """What a result is sent as, and whether that is the ``{"err": 0}`` envelope."""
    if spec.raw:
        return result, False
    if isinstance(result, Result):
        return result.envelope(), True
    return {"err": 0, "data": result}, True


def render(spec: EndpointSpec, result: Any, query: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return serialise(payload_of(spec, result)[0], query)


def serialise(payload: Any, query: Any, status: int = 200) -> web.Response:
    return respond(dumps(payload), query, status)


def respond(body: bytes, query: Any, status: int = 200) -> web.Response:
    """A serialised payload as the response, wrapped for JSONP when asked."""
    callback = query.get("callback")
    if callback is not None and JSONP_CALLBACK.match(callback):
        # JSONP for w.c.s.'s legacy browser-side data sources.
        body = callback.encode() + b"(" + body + b");"
        return web.Response(body=body, status=status, content_type="application/javascript")
    return web.Response(body=body, status=status, content_type="application/json")


def make_context(request: web.Request, caller: str | None) -> Context:
    return Context(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        remote=request.remote,
        request_id=request_id_of(request),
        apiuser=caller,
        raw_request=request,
    )


class EndpointHandler:
    """The aiohttp handler of ``/{type}/{slug}/{endpoint}{rest}``."""

    def __init__(
        self, registry: InstanceRegistry, access: AccessChecker | None = None, cache: ResponseCache | None = None
    ) -> None:
        self.registry = registry
        self.access = access or AccessChecker(registry.settings, registry.sessionmaker)
        self.cache = cache if cache is not None and cache.enabled else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Errors raised here are rendered by passerelle.middleware.
        info = request.match_info
        return await self.call(request, info["type"], info["slug"], info["endpoint"], info["rest"])

    async def call(self, request: web.Request, type_slug: str, slug: str, name: str, rest: str) -> web.StreamResponse:
        connector = self.registry.lookup(type_slug, slug)
        rest = rest.lstrip("/") if rest != "/" else ""
        spec, groups = select_endpoint(connector, name, rest, request.method)
        # Known instance and endpoint: metrics and resource logs may name them (bounded labels).
        request[CALLED_ENDPOINT] = (connector, spec.name)
        query = request.query
        caller = None
        if not spec.is_public:
            callers = self.registry.rights.get(connector.instance.id, {}).get(spec.perm, ())
            # An open user needs no credential check: no await on this path.
            caller = open_caller(callers, request.remote)
            if caller is None:
                caller = await self.access.authorize(
                    callers,
                    raw_query=raw_query_string(request),
                    query=query,
                    authorization=request.headers.get("Authorization"),
                    remote=request.remote,
                    target=f"{type_slug}/{slug}/{name}",
                )
            request[CALLER] = caller  # named in the call's resource log line
        arguments = read_query(spec, query)
        if groups or spec.path_params:
            arguments.update(convert_path(spec, groups))
        if spec.signature.body_arg is not None and request.method in BODY_METHODS:
            arguments[spec.signature.body_arg] = await read_body(spec, request)
        elif spec.signature.body_arg is not None:
            arguments[spec.signature.body_arg] = None
        if spec.signature.context_arg is not None:
            arguments[spec.signature.context_arg] = make_context(request, caller)
        method = getattr(connector, spec.method_name)
        if self.cache is not None and spec.cache_duration > 0 and request.method in CACHED_METHODS:
            # After the access check and the validation: the cache never answers what the call would refuse.
            return await self.cached_call(connector, spec, rest, query, method, arguments)
        result = await method(**arguments)
        return render(spec, result, query)

    async def cached_call(
        self,
        connector: Connector,
        spec: EndpointSpec,
        rest: str,
        query: Any,
        method: Callable[..., Awaitable[Any]],
        arguments: dict[str, Any],
    ) -> web.StreamResponse:
        assert self.cache is not None

        async def produce() -> Produced:
            result = await method(**arguments)
            if isinstance(result, web.StreamResponse):
                return result
            return payload_of(spec, result)

        key = self.cache.key(connector, spec.name, rest, query)
        answer = await self.cache.fetch(key, spec.cache_duration, produce)
        if isinstance(answer, web.StreamResponse):
            return answer
        # JSONP is applied after the cache: the callback is not part of the key.
        response = respond(answer.body, query)
        response.headers.update(answer.headers())
        return response
