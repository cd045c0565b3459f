"""A connector type's or instance's documentation as plain data.

The instance page (HTML and JSON), the admin API's type list and the OpenAPI
document are all rendered from these dictionaries, so they cannot disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from passerelle.connectors import Connector, EndpointSpec, secret_fields
from passerelle.parameters import ParamSpec


def param_description(param: ParamSpec, location: str) -> dict[str, Any]:
    return {
        "name": param.query_name,
        "in": location,
        "required": param.required,
        "type": param.type_label(),
        "description": param.description,
        "example": param.example,
        "default": param.default,
        "constraints": notes({k: v for k, v in param.json_schema.items() if k not in ("default", "examples")}),
        "schema": param.json_schema,
    }


def endpoint_path(spec: EndpointSpec) -> str:
    """The endpoint's path template after the instance, e.g. ``query/{name}/``.

    A pattern's path comes from its ``example_pattern``, else from the regular
    expression itself when it is a plain path with named groups
    (``^(?P<id>\\d+)/$`` gives ``{id}/``), else it is ``{rest}``.
    """
    if spec.pattern is None:
        return f"{spec.name}/"
    return f"{spec.name}/{rest_template(spec)}"


def rest_template(spec: EndpointSpec) -> str:
    """The path template after the endpoint name (empty without a pattern)."""
    if spec.pattern is None:
        return ""
    if spec.example_pattern is not None:
        return spec.example_pattern
    derived = template_from_pattern(spec.pattern.pattern)
    return derived if derived is not None else "{rest}"


_PLAIN_ESCAPES = re.compile(r"\\([/\-.,:;=@~_!'])")
_REGEX_SYNTAX = re.compile(r"[\\^$.*+?()\[\]|]")


def template_from_pattern(pattern: str) -> str | None:
    r"""``^(?P<id>\d+)/children/$`` -> ``{id}/children/``; None when the regular
    expression is more than literal text and named groups."""
    source = pattern.removeprefix("^")
    for end in ("\\Z", "$"):
        if source.endswith(end) and not source.endswith("\\" + end):
            source = source[: -len(end)]
            break
    out: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(source):
        if source.startswith("(?P<", i):
            close = source.find(">", i)
            if close < 0:
                return None
            names.append(source[i + 4 : close])
            depth, j, in_class = 1, close + 1, False
            while j < len(source) and depth:
                char = source[j]
                if char == "\\":
                    j += 2
                    continue
                if in_class:
                    in_class = char != "]"
                elif char == "[":
                    in_class = True
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                j += 1
            if depth:
                return None
            out.append("{" + names[-1] + "}")
            i = j
        elif source[i] == "\\":
            out.append(source[i : i + 2])
            i += 2
        else:
            out.append(source[i])
            i += 1
    text = "".join(out)
    bare = _PLAIN_ESCAPES.sub("", re.sub(r"\{\w+\}", "", text))
    if _REGEX_SYNTAX.search(bare) or "{" in bare or "}" in bare:
        return None
    template = _PLAIN_ESCAPES.sub(r"\1", text)
    return template if template_names(template) == names else None


def template_names(template: str) -> list[str]:
    """The ``{name}`` placeholders of a path template, in order."""
    return re.findall(r"\{(\w+)\}", template)


def example_query(spec: EndpointSpec) -> list[tuple[str, str]]:
    """The query string of an example call: every parameter with an example value."""
    pairs: list[tuple[str, str]] = []
    for param in spec.query_params:
        if param.example is None:
            continue
        values = param.example if isinstance(param.example, (list, tuple)) else [param.example]
        pairs.extend((param.query_name, query_value(value)) for value in values)
    return pairs


def query_value(value: Any) -> str:
    """How a value is written in a query string (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- JSON Schema as a readable tree --------------------------------------------

_MAX_DEPTH = 8


def schema_tree(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON Schema as nested nodes a page can show: ``{"name", "type", "required",
    "description", "notes", "children"}``. ``$ref``s to ``$defs`` are followed
    (a recursive reference is shown once); ``children`` are an object's properties,
    or the properties of a list's items."""
    if schema is None:
        return None
    return _SchemaWalker(schema).node("", schema, required=True, depth=0, seen=())


class _SchemaWalker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, schema: Any, seen: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...], str | None]:
        """Follow ``$ref`` (and single-item ``allOf``); returns the schema, the refs on the way
        and, when a reference loops back, its name."""
        if not isinstance(schema, dict):
            return {}, seen, None
        for _ in range(_MAX_DEPTH):
            if "$ref" in schema and isinstance(schema["$ref"], str):
                ref = schema["$ref"]
                if ref in seen:
                    return {k: v for k, v in schema.items() if k != "$ref"}, seen, ref.rsplit("/", 1)[-1] or "root"
                target = self.lookup(ref)
                siblings = {k: v for k, v in schema.items() if k != "$ref"}
                schema = {**target, **siblings}
                seen = (*seen, ref)
            elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
                siblings = {k: v for k, v in schema.items() if k != "allOf"}
                schema = {**self.resolve(schema["allOf"][0], seen)[0], **siblings}
            else:
                break
        return schema, seen, None

    def lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}
        target: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict):
                target = target.get(part, {})
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                return {}
        return target if isinstance(target, dict) else {}

    def label(self, schema: dict[str, Any], seen: tuple[str, ...], depth: int) -> str:
        schema, seen, loop = self.resolve(schema, seen)
        if loop is not None:
            return f"{loop} (recursive)"
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list) and depth < _MAX_DEPTH:
            labels = [self.label(alt, seen, depth + 1) for alt in alternatives]
            return " or ".join(dict.fromkeys(labels))
        kind = schema.get("type")
        if isinstance(kind, list):
            return " or ".join(self.single_label({**schema, "type": k}, seen, depth) for k in kind)
        return self.single_label(schema, seen, depth)

    def single_label(self, schema: dict[str, Any], seen: tuple[str, ...], depth: int) -> str:
        kind = schema.get("type")
        if kind == "array":
            items = schema.get("items")
            inner = self.label(items, seen, depth + 1) if isinstance(items, dict) and depth < _MAX_DEPTH else "any"
            return f"list of {inner}"
        if kind is None:
            if "enum" in schema or "const" in schema:
                return "value"
            if "properties" in schema:
                kind = "object"
            else:
                return "any"
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if fmt else str(kind)

    def node(self, name: str, schema: Any, *, required: bool, depth: int, seen: tuple[str, ...]) -> dict[str, Any]:
        label = self.label(schema, seen, depth)
        resolved, inner_seen, loop = self.resolve(schema, seen)
        node: dict[str, Any] = {
            "name": name,
            "type": label,
            "required": required,
            "description": str(resolved.get("description") or ""),
            "notes": notes(resolved),
            "children": [],
        }
        if loop is not None or depth >= _MAX_DEPTH:
            return node
        container = self.container(resolved, inner_seen)
        if container is not None:
            obj, obj_seen = container
            if obj is not resolved:
                node["notes"] += [n for n in notes(obj) if n not in node["notes"]]
            needed = set(obj.get("required") or ())
            for key, sub in (obj.get("properties") or {}).items():
                node["children"].append(self.node(key, sub, required=key in needed, depth=depth + 1, seen=obj_seen))
        return node

    def container(self, schema: dict[str, Any], seen: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        """The object schema whose properties are this node's children, if any."""
        if isinstance(schema.get("properties"), dict):
            return schema, seen
        items = schema.get("items")
        if schema.get("type") == "array" and isinstance(items, dict):
            resolved, item_seen, loop = self.resolve(items, seen)
            if loop is None:
                return self.container(resolved, item_seen)
            return None
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list):
            candidates = []
            for alternative in alternatives:
                resolved, alt_seen, loop = self.resolve(alternative, seen)
                if loop is None and resolved.get("type") != "null":
                    candidates.append(self.container(resolved, alt_seen))
            if len(candidates) == 1:
                return candidates[0]
        return None


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def notes(schema: dict[str, Any]) -> list[str]:
    """Constraints, default and examples of a schema, in words."""
    found: list[str] = []
    if "const" in schema:
        found.append(f"always {_show(schema['const'])}")
    if isinstance(schema.get("enum"), list):
        found.append("one of " + ", ".join(_show(v) for v in schema["enum"]))
    bounds = [
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ]
    found.extend(f"{sign} {_show(schema[key])}" for key, sign in bounds if key in schema)
    counts = [
        ("minLength", "at least", "character"),
        ("maxLength", "at most", "character"),
        ("minItems", "at least", "item"),
        ("maxItems", "at most", "item"),
    ]
    for key, words, unit in counts:
        if isinstance(schema.get(key), int):
            found.append(f"{words} {schema[key]} {unit}{'' if schema[key] == 1 else 's'}")
    if "pattern" in schema:
        found.append(f"matches {schema['pattern']}")
    if schema.get("uniqueItems"):
        found.append("no duplicates")
    if schema.get("additionalProperties") is False:
        found.append("no other properties")
    if "default" in schema:
        found.append(f"default {_show(schema['default'])}")
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        found.append("example " + ", ".join(_show(v) for v in schema["examples"][:3]))
    elif "example" in schema:
        found.append(f"example {_show(schema['example'])}")
    if schema.get("deprecated"):
        found.append("deprecated")
    return found


def endpoint_description(spec: EndpointSpec, instance_url: str | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {
        "id": spec.method_name,
        "name": spec.name,
        "path": endpoint_path(spec),
        "methods": list(spec.methods),
        "perm": spec.perm,
        "public": spec.is_public,
        "description": spec.description,
        "long_description": spec.long_description,
        "display_category": spec.display_category,
        "display_order": spec.display_order,
        "cache_duration": spec.cache_duration,
        "raw": spec.raw,
        "datasource": spec.datasource,
        "parameters": [param_description(p, "path") for p in spec.path_params]
        + [param_description(p, "query") for p in spec.query_params],
        "extra_parameters": spec.signature.accepts_extra,
        "body_schema": spec.body_schema,
        "body_tree": schema_tree(spec.body_schema),
        "response_schema": spec.response_schema,
    }
    if instance_url is not None:
        description["example_url"] = example_url(spec, instance_url)
    return description


def example_url(spec: EndpointSpec, instance_url: str) -> str | None:
    """A URL calling the endpoint with its example values; None when the path has
    placeholders without examples (nothing sensible to click on)."""
    rest = ""
    if spec.pattern is not None:
        template = rest_template(spec)
        examples = {p.name: p.example for p in spec.path_params}
        if any(examples.get(name) is None for name in template_names(template)):
            return None
        rest = re.sub(r"\{(\w+)\}", lambda m: quote(query_value(examples[m.group(1)]), safe=""), template)
        if spec.example_pattern is None and not spec.pattern.match(rest):
            return None
    url = f"{instance_url.rstrip('/')}/{spec.name}/" + rest
    query = example_query(spec)
    return f"{url}?{urlencode(query)}" if query else url


def sorted_specs(cls: type[Connector]) -> list[EndpointSpec]:
    """The documented endpoints (``show=False`` ones are left out), in page order:
    by display category, display order, name, then path."""
    specs = [s for variants in cls.endpoints.values() for s in variants if s.show]
    return sorted(specs, key=lambda s: (s.display_category, s.display_order, s.name, endpoint_path(s), s.methods))


def type_description(cls: type[Connector]) -> dict[str, Any]:
    return {
        "slug": cls.slug,
        "title": cls.title,
        "category": cls.category,
        "description": cls.description,
        "config_schema": cls.Config.model_json_schema(),
        "secret_fields": secret_fields(cls.Config),
        "permissions": cls.permissions(),
        "periodic_jobs": [
            {"method": job.method_name, "seconds": job.seconds, "description": job.description}
            for job in cls.periodic_jobs
        ],
        "endpoints": [endpoint_description(s) for s in sorted_specs(cls)],
    }


def instance_description(
    connector: Connector, instance_url: str, availability: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``availability``: the instance's state and last changes
    (:func:`availability_description`), shown when given."""
    cls = type(connector)
    info = connector.instance
    description = {
        "type": info.type,
        "slug": info.slug,
        "title": info.title,
        "description": info.description,
        "type_title": cls.title,
        "category": cls.category,
        "type_description": cls.description,
        "url": instance_url,
        "endpoints": [endpoint_description(s, instance_url) for s in sorted_specs(cls)],
    }
    if availability is not None:
        description["availability"] = availability
    return description


def availability_description(state: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    """An instance's availability for its page: ``status`` is ``unknown`` until checked."""
    return {
        "status": state.status if state is not None else "unknown",
        "since": state.since if state is not None else None,
        "last_check": state.last_check if state is not None else None,
        "message": state.message if state is not None else "",
        "events": events,
    }
