"""OpenAPI 3.1 document of every instance, generated from endpoint declarations.

``GET /openapi.json`` documents every configured instance; ``?type=<type>`` keeps
the instances of one type and ``?instance=<type>/<slug>`` one instance. Each
endpoint variant is one path (``/<type>/<slug>/<name>/<pattern template>``), each
of its HTTP methods one operation, tagged with its instance.

JSON Schemas declared by connectors (pydantic's carry ``$defs``) are moved to
``components/schemas`` and their ``$ref``s rewritten, so the document is
self-contained and passes an OpenAPI validator.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

import passerelle
from passerelle.connectors import Connector, EndpointSpec
from passerelle.description import endpoint_path, sorted_specs, template_names
from passerelle.envelope import (
    HubError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RequestError,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
    json_response,
)
from passerelle.hub import Hub, hub_of
from passerelle.instances import InstanceRegistry
from passerelle.parameters import ParamSpec

__all__ = ["build_openapi", "build_type_openapi", "handler"]

OPENAPI_VERSION = "3.1.0"
SCHEMAS = "#/components/schemas/"

# Error responses shared by every operation: status -> (component name, description, error class).
ERROR_RESPONSES: dict[str, tuple[str, str, type[HubError]]] = {
    "400": ("BadRequest", "A parameter or the body is missing or invalid.", RequestError),
    "401": ("Unauthorized", "Credentials are missing or wrong.", Unauthorized),
    "403": ("Forbidden", "The caller may not call this endpoint.", PermissionDenied),
    "404": ("NotFound", "Unknown instance, endpoint or object.", NotFound),
    "405": ("MethodNotAllowed", "The endpoint exists, not with this method.", MethodNotAllowed),
    "500": ("InternalError", "An unexpected error; its details are in the hub's logs.", InternalError),
    "502": ("UpstreamError", "The business application failed or answered nonsense.", UpstreamError),
    "503": ("UpstreamUnavailable", "The business application or the instance is unavailable.", UpstreamUnavailable),
}

DATASOURCE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Data source items, as w.c.s. and Combo read them.",
    "items": {
        "type": "object",
        "required": ["id", "text"],
        "properties": {
            "id": {"description": "The item's identifier."},
            "text": {"type": "string", "description": "The item's label."},
        },
    },
}


def base_document(base_url: str, description: str) -> dict[str, Any]:
    """The parts every document shares: info, servers, envelopes, security schemes."""
    error_envelope = {
        "type": "object",
        "description": "The error envelope: Passerelle's convention, which w.c.s. and Combo branch on.",
        "required": ["err", "err_class", "err_desc"],
        "properties": {
            "err": {
                "type": ["integer", "string"],
                "not": {"const": 0},
                "description": "Non-zero: the call failed (1 unless the connector chose another code).",
                "examples": [1],
            },
            "err_class": {
                "type": "string",
                "description": "The error's class in the hub's error tree.",
                "examples": [RequestError.err_class()],
            },
            "err_desc": {"type": "string", "description": "What went wrong, in words."},
            "data": {"description": "Details given by the connector, or null."},
        },
    }
    responses: dict[str, Any] = {}
    for _status, (name, text, error) in ERROR_RESPONSES.items():
        responses[name] = {
            "description": text,
            "content": {
                "application/json": {
                    "schema": {"$ref": SCHEMAS + "ErrorEnvelope"},
                    "example": {
                        "err": 1,
                        "err_class": error.err_class(),
                        "err_desc": error.default_message,
                        "data": None,
                    },
                }
            },
        }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Passerelle hub",
            "version": passerelle.__version__,
            "description": description,
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "tags": [],
        "paths": {},
        "components": {
            "schemas": {"ErrorEnvelope": error_envelope},
            "responses": responses,
            "securitySchemes": {
                "apikey": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "apikey",
                    "description": "The key of an API user of type API holding the endpoint's access right.",
                },
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "An API user's name and key as HTTP Basic credentials.",
                },
            },
        },
    }


def build_openapi(
    hub: Hub, base_url: str, *, type_slug: str | None = None, instance: str | None = None
) -> dict[str, Any]:
    """The OpenAPI document of the hub's instances (optionally one type's, or one instance)."""
    connectors = hub.registry.all()
    if type_slug is not None:
        connectors = [c for c in connectors if c.instance.type == type_slug]
    if instance is not None:
        connectors = [c for c in connectors if f"{c.instance.type}/{c.instance.slug}" == instance]
    document = base_document(
        base_url,
        "The endpoints of this hub's connector instances. Every answer is a JSON envelope: "
        '`{"err": 0, "data": ...}` on success, `{"err": 1, "err_class", "err_desc", "data"}` on error '
        "(business errors keep HTTP 200).",
    )
    operation_ids: set[str] = set()
    for connector in connectors:
        info = connector.instance
        tag = f"{info.type}/{info.slug}"
        text = info.description or type(connector).description
        document["tags"].append({"name": tag, "description": f"{info.title} ({type(connector).title}). {text}".strip()})
        open_perms = open_permissions(hub.registry, connector)
        for spec in sorted_specs(type(connector)):
            add_endpoint(document, spec, f"/{info.type}/{info.slug}/", tag, operation_ids, open_perms=open_perms)
    return document


def build_type_openapi(types: Iterable[type[Connector]], base_url: str = "/") -> dict[str, Any]:
    """A document of connector types rather than instances: the instance slug is a path
    parameter (``/<type>/{slug}/...``). For reference pages and checks of a type."""
    document = base_document(base_url, "The endpoints of connector types; `slug` names an instance.")
    operation_ids: set[str] = set()
    for cls in types:
        document["tags"].append({"name": cls.slug, "description": f"{cls.title}. {cls.description}".strip()})
        for spec in sorted_specs(cls):
            add_endpoint(document, spec, f"/{cls.slug}/{{slug}}/", cls.slug, operation_ids, slug_param=True)
    return document


def open_permissions(registry: InstanceRegistry, connector: Connector) -> set[str]:
    """Access rights an open API user (no key) holds on this instance: no credentials needed."""
    rights = registry.rights.get(connector.instance.id, {})
    return {perm for perm, callers in rights.items() if any(c.keytype == "" for c in callers)}


def add_endpoint(
    document: dict[str, Any],
    spec: EndpointSpec,
    prefix: str,
    tag: str,
    operation_ids: set[str],
    *,
    slug_param: bool = False,
    open_perms: set[str] | None = None,
) -> None:
    path = prefix + endpoint_path(spec)
    item = document["paths"].setdefault(path, {})
    components = document["components"]["schemas"]
    parameters = path_parameters(spec, path)
    if slug_param:
        parameters.insert(
            0,
            {
                "name": "slug",
                "in": "path",
                "required": True,
                "description": "The connector instance's slug.",
                "schema": {"type": "string"},
            },
        )
    parameters += [query_parameter(p, components) for p in spec.query_params]
    for method in spec.methods:
        verb = method.lower()
        if verb in item:
            continue  # the dispatcher would pick the earlier variant as well
        operation: dict[str, Any] = {
            "tags": [tag],
            "summary": spec.description or spec.name,
            "operationId": unique_id(f"{tag}/{spec.method_name}/{verb}", operation_ids),
        }
        details = [spec.long_description] if spec.long_description else []
        if spec.signature.accepts_extra:
            details.append("Any other query parameter is accepted and passed to the connector.")
        if spec.cache_duration:
            details.append(f"Answers are cached for {spec.cache_duration} s.")
        if spec.raw:
            details.append("Raw answer: the returned JSON has no `err` envelope on success.")
        details.append(
            "Public: no credentials needed." if spec.is_public else f"Requires the access right `{spec.perm}`."
        )
        operation["description"] = "\n\n".join(details)
        if parameters:
            operation["parameters"] = parameters
        if spec.body_schema is not None and method in ("POST", "PUT", "PATCH"):
            name = spec.body_model.__name__ if spec.body_model is not None else None
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": hoist(spec.body_schema, components, name)}},
            }
        operation["responses"] = responses(spec, components)
        if spec.is_public:
            operation["security"] = []
        else:
            security: list[dict[str, list[str]]] = [{"apikey": []}, {"basic": []}]
            if open_perms is not None and spec.perm in open_perms:
                security.append({})
            operation["security"] = security
        operation["x-passerelle-perm"] = spec.perm
        if spec.datasource:
            operation["x-passerelle-datasource"] = True
        item[verb] = operation


def unique_id(candidate: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", candidate).strip("_")
    name, counter = base, 2
    while name in taken:
        name = f"{base}_{counter}"
        counter += 1
    taken.add(name)
    return name


def path_parameters(spec: EndpointSpec, path: str) -> list[dict[str, Any]]:
    """One parameter per placeholder of the path template (``{rest}`` when the
    pattern cannot be written as a template)."""
    by_name = {p.name: p for p in spec.path_params}
    parameters = []
    for name in template_names(path):
        if name == "slug" and name not in by_name:
            continue  # the instance slug of a type document, added by the caller
        param = by_name.get(name)
        if param is None:
            pattern = spec.pattern.pattern if spec.pattern is not None else ""
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": f"The rest of the path, matching the regular expression `{pattern}`.",
                    "schema": {"type": "string"},
                }
            )
            continue
        parameters.append(parameter_object(param, "path", {}))
    return parameters


def query_parameter(param: ParamSpec, components: dict[str, Any]) -> dict[str, Any]:
    return parameter_object(param, "query", components)


def parameter_object(param: ParamSpec, location: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = hoist(param.json_schema, components)
    example = param.example
    if param.many and example is not None and not isinstance(example, (list, tuple)):
        example = [example]
        if isinstance(schema.get("examples"), list):
            schema["examples"] = [v if isinstance(v, list) else [v] for v in schema["examples"]]
    if not param.required and param.default is not None and "default" not in schema:
        schema["default"] = param.default
    parameter: dict[str, Any] = {
        "name": param.query_name,
        "in": location,
        "required": param.required or location == "path",
        "schema": schema,
    }
    if param.description:
        parameter["description"] = param.description
    if example is not None:
        parameter["example"] = example
    if param.many:
        parameter["style"] = "form"
        parameter["explode"] = True
    return parameter


def responses(spec: EndpointSpec, components: dict[str, Any]) -> dict[str, Any]:
    error_ref = {"$ref": SCHEMAS + "ErrorEnvelope"}
    declared = spec.response_schema
    if declared is None and spec.datasource:
        declared = DATASOURCE_SCHEMA
    data_schema = hoist(declared, components) if declared is not None else {}
    if spec.raw:
        description = "The connector's raw answer, or an error envelope for a business error."
        schema: dict[str, Any] = {"anyOf": [data_schema, error_ref]}
    else:
        description = "The success envelope (`err` 0), or an error envelope for a business error (`err` 1)."
        success = {
            "type": "object",
            "required": ["err", "data"],
            "properties": {"err": {"const": 0}, "data": data_schema},
        }
        schema = {"oneOf": [success, error_ref]}
    result: dict[str, Any] = {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}
    for status, (name, _text, _error) in ERROR_RESPONSES.items():
        if spec.is_public and status in ("401", "403"):
            continue
        result[status] = {"$ref": f"#/components/responses/{name}"}
    return result


# -- moving $defs to components/schemas ---------------------------------------------


def hoist(schema: dict[str, Any], components: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A copy of ``schema`` whose local definitions live in ``components`` (the document's
    ``components/schemas``) and whose ``$ref``s point there. With ``name``, or when
    some ``$ref`` points into the schema itself, the schema is a component too and a
    ``$ref`` to it is returned. Definitions equal to one already present are shared;
    a name already used by a different schema gets a suffix."""
    schema = copy.deepcopy(schema)
    definitions: dict[tuple[str, str], Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.pop(key, None)
        if isinstance(found, dict):
            definitions.update({(key, def_name): value for def_name, value in found.items()})
    root_refs = _has_root_refs(schema, definitions)
    # A recursive pydantic model is a bare $ref to its own definition: no root component then.
    bare_ref = set(schema) <= {"$ref", "description", "title"} and _definition_ref(str(schema.get("$ref", "")))
    as_component = root_refs or (name is not None and not bare_ref)
    local: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for key, def_name in [*definitions, ("", "")]:
        base = _safe_name(def_name if key else (name or str(schema.get("title") or "Schema")))
        candidate, counter = base, 2
        while candidate in used:
            candidate, counter = f"{base}_{counter}", counter + 1
        used.add(candidate)
        local[(key, def_name)] = candidate
    suffixes = dict.fromkeys(local, 1)
    for _ in range(1000):
        mapping = {k: v + (f"_{suffixes[k]}" if suffixes[k] > 1 else "") for k, v in local.items()}
        root_name = mapping.pop(("", ""))
        target = root_name if as_component else None
        found = {k: _rewrite(v, mapping, target) for k, v in definitions.items()}
        names = dict(mapping)
        if as_component:
            found[("", "")] = _rewrite(schema, mapping, target)
            names[("", "")] = root_name
        clashes = [k for k, value in found.items() if components.get(names[k], value) != value]
        if not clashes:
            components.update({names[k]: value for k, value in found.items()})
            return {"$ref": SCHEMAS + root_name} if as_component else _rewrite(schema, mapping, None)
        for key in clashes:
            suffixes[key] += 1
    raise RuntimeError("cannot name the schema's definitions")  # pragma: no cover


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "Schema"


def _has_root_refs(schema: Any, definitions: dict[tuple[str, str], Any]) -> bool:
    """Whether some ``$ref`` points into the schema itself rather than its definitions."""
    found = False

    def visit(value: Any) -> None:
        nonlocal found
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#") and not _definition_ref(ref):
                found = True
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(schema)
    for value in definitions.values():
        visit(value)
    return found


def _definition_ref(ref: str) -> tuple[str, str, str] | None:
    match = re.match(r"^#/(\$defs|definitions)/([^/]+)(/.*)?$", ref)
    if match is None:
        return None
    name = match.group(2).replace("~1", "/").replace("~0", "~")
    return match.group(1), name, match.group(3) or ""


def _rewrite(value: Any, mapping: dict[tuple[str, str], str], root_name: str | None) -> Any:
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#"):
                target = _definition_ref(item)
                if target is not None and (target[0], target[1]) in mapping:
                    item = SCHEMAS + mapping[(target[0], target[1])] + target[2]
                elif target is None and root_name is not None:
                    item = SCHEMAS + root_name + item[1:]
            result[key] = _rewrite(item, mapping, root_name)
        return result
    if isinstance(value, list):
        return [_rewrite(item, mapping, root_name) for item in value]
    return value


# -- the view -----------------------------------------------------------------------


async def handler(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    type_slug = request.query.get("type") or None
    instance = request.query.get("instance") or None
    if type_slug is not None and type_slug not in hub.types:
        raise NotFound(f"unknown connector type '{type_slug}'")
    if instance is not None:
        kind, _, slug = instance.partition("/")
        hub.registry.lookup(kind, slug)  # 404 (or 503 for a broken instance) when absent
    document = build_openapi(hub, hub.base_url(request), type_slug=type_slug, instance=instance)
    return json_response(document)
