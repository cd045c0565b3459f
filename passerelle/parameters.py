"""Endpoint parameters: read from a method's signature, validated from a request.

A connector declares parameters as ordinary keyword arguments::

    async def data(
        self,
        q: Annotated[str | None, Param("Text to search", example="musée")] = None,
        limit: Annotated[int, Param("Largest number of items", example=10)] = 20,
    ) -> list[dict]: ...

An argument without a default is required. The type (``str``, ``int``, ``float``,
``bool``, ``date``, ``datetime``, ``Decimal``, an ``Enum`` or ``Literal``, a
``list[...]`` of those for repeated parameters, or ``X | None``) is enforced with
pydantic, and a value that does not fit becomes a 400 whose ``err_desc`` names the
parameter and what was expected.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from passerelle.envelope import WrongParameter

__all__ = ["PUBLIK_PARAMETERS", "Param", "ParamSpec", "spec_from_signature"]

# Query parameters Publik adds to calls (signature, federation, output format):
# an endpoint never rejects them as unknown.
PUBLIK_PARAMETERS = frozenset(
    {"orig", "NameID", "email", "algo", "timestamp", "nonce", "signature", "apikey", "format", "callback"}
)


@dataclass(frozen=True)
class Param:
    """Documentation of one endpoint parameter, used inside ``Annotated[...]``."""

    description: str = ""
    example: Any = None
    alias: str | None = None  # the query-string name, when it is not a Python identifier
    # Extra JSON Schema keywords (minimum, pattern, enum…) shown in the docs and enforced.
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParamSpec:
    name: str  # the Python argument name
    query_name: str  # the name in the query string or path
    annotation: Any
    required: bool
    default: Any
    description: str
    example: Any
    many: bool
    json_schema: dict[str, Any]
    _adapter: TypeAdapter[Any] | None = field(repr=False, default=None)

    def convert(self, raw: str | list[str]) -> Any:
        if self._adapter is None:
            return raw  # plain str: nothing to check
        try:
            return self._adapter.validate_python(raw)
        except ValidationError as exc:
            raise WrongParameter(f"invalid value for parameter '{self.query_name}': {describe_error(exc)}") from None

    def type_label(self) -> str:
        schema = self.json_schema
        kind = schema.get("type") or ("enum" if "enum" in schema else "string")
        if self.many:
            kind = f"list of {schema.get('items', {}).get('type', 'string')}"
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if fmt else str(kind)


def describe_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    message = str(first["msg"])
    value = first.get("input")
    if isinstance(value, str) and len(value) <= 60:
        return f"{message[0].lower()}{message[1:]}, got '{value}'"
    return message[0].lower() + message[1:]


def _unwrap(annotation: Any) -> tuple[Any, Param | None]:
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        params = [m for m in metadata if isinstance(m, Param)]
        return base, params[0] if params else None
    return annotation, None


def _is_optional(annotation: Any) -> tuple[bool, Any]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != len(get_args(annotation)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return True, inner
    return False, annotation


def build_param(name: str, annotation: Any, default: Any, *, in_path: bool = False) -> ParamSpec:
    base, doc = _unwrap(annotation)
    doc = doc or Param()
    if base is inspect.Parameter.empty:
        base = str
    _, inner = _is_optional(base)
    many = get_origin(inner) is list
    required = in_path or default is inspect.Parameter.empty
    adapter: TypeAdapter[Any] | None
    if inner is str and not doc.schema:
        adapter = None
        json_schema: dict[str, Any] = {"type": "string"}
    else:
        target = Annotated[inner, _schema_constraints(doc.schema)] if doc.schema else inner
        adapter = TypeAdapter(target)
        json_schema = adapter.json_schema()
    json_schema.pop("title", None)
    if doc.description:
        json_schema["description"] = doc.description
    if doc.example is not None:
        # A repeated parameter's schema is an array: its example must be one too.
        example = doc.example if not many or isinstance(doc.example, list) else [doc.example]
        json_schema["examples"] = [example]
    return ParamSpec(
        name=name,
        query_name=doc.alias or name,
        annotation=base,
        required=required,
        default=None if default is inspect.Parameter.empty else default,
        description=doc.description,
        example=doc.example,
        many=many,
        json_schema=json_schema,
        _adapter=adapter,
    )


def _schema_constraints(schema: dict[str, Any]) -> Any:
    from pydantic import Field

    mapping = {
        "minimum": "ge",
        "maximum": "le",
        "exclusiveMinimum": "gt",
        "exclusiveMaximum": "lt",
        "minLength": "min_length",
        "maxLength": "max_length",
        "pattern": "pattern",
    }
    unknown = set(schema) - set(mapping)
    if unknown:
        raise TypeError(f"Param(schema=...) supports {sorted(mapping)}, not {sorted(unknown)}")
    return Field(**{mapping[key]: value for key, value in schema.items()})


@dataclass
class SignatureSpec:
    query: list[ParamSpec]
    path: list[ParamSpec]
    context_arg: str | None
    body_arg: str | None
    accepts_extra: bool


def spec_from_signature(func: Any, *, path_names: set[str], context_type: type, has_body: bool) -> SignatureSpec:
    """Split a method's arguments into query parameters, path groups, context and body."""
    signature = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    query: list[ParamSpec] = []
    path: list[ParamSpec] = []
    context_arg = body_arg = None
    accepts_extra = False
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if index == 0 and name == "self":
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
            continue
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{func.__qualname__}: *{name} cannot be an endpoint parameter")
        annotation = hints.get(name, parameter.annotation)
        if annotation is context_type:
            context_arg = name
        elif name == "body" and has_body:
            body_arg = name
        elif name in path_names:
            path.append(build_param(name, annotation, parameter.default, in_path=True))
        else:
            query.append(build_param(name, annotation, parameter.default))
    missing = path_names - {p.name for p in path}
    if missing:
        raise TypeError(f"{func.__qualname__}: pattern groups {sorted(missing)} have no matching argument")
    if has_body and body_arg is None:
        raise TypeError(f"{func.__qualname__}: an endpoint with a body schema takes a 'body' argument")
    return SignatureSpec(query, path, context_arg, body_arg, accepts_extra)
